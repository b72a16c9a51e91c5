"""The run table's views of runs: selection, several experiments, totals, grouping, hidden constant
columns, CSV export and saved views."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.http import StreamingHttpResponse
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.permissions import SYSTEM_READER
from accounts.roles import Role
from accounts.services import assign_role
from audit.models import AuditEvent
from config.exceptions import InvalidInput
from dashboard.views import run_table as run_table_views
from tests.factories import UserFactory
from tests.page_tokens import forged_token, run_sort
from tracker import services
from tracker.models import Param, Run, SavedView
from tracker.selectors import count_runs, group_runs, iter_runs
from tracker.services import DatasetSpec

pytestmark = pytest.mark.django_db


@pytest.fixture
def sweep(make_experiment, make_run):
    """Six runs: lr in three values, optimizer in two, val_f1 rising."""
    experiment = make_experiment("grid")
    runs = []
    for index in range(6):
        runs.append(
            make_run(
                experiment,
                f"run-{index}",
                params={"lr": ("0.1", "0.01", "0.001")[index % 3], "optimizer": ("adam", "sgd")[index // 3],
                        "seed": "7"},
                metrics={"val_f1": 0.5 + index / 10},
                datasets=[DatasetSpec(name="digits", digest=f"{index % 2:064x}", version="2.1")],
                minutes=index,
            )
        )  # fmt: skip
    return experiment, runs


def table(experiment) -> str:
    return reverse("dashboard:run-table", args=[experiment.pk])


def names(response) -> list[str]:
    return [data.run.name for data in response.context["page"].runs]


def test_selected_runs_are_checked_and_the_compare_button_carries_them(viewer_client, sweep):
    experiment, runs = sweep
    chosen = [runs[0].uuid, runs[3].uuid, "f" * 32]  # a selected run need not be on this page
    response = viewer_client.get(table(experiment), {"selected": chosen})
    content = response.content.decode()
    assert response.status_code == 200
    assert f'value="{runs[0].uuid}" aria-label="Select run run-0" checked>' in content
    assert f'value="{runs[1].uuid}" aria-label="Select run run-1">' in content
    link = unescape(
        re.search(r'<a class="button primary" id="compare-button" href="([^"]+)"', content).group(1)
    )
    assert urlsplit(link).path == reverse("dashboard:compare")
    assert parse_qs(urlsplit(link).query)["runs"] == chosen
    assert ">Compare 3 runs</a>" in content
    # Sorting and paging links keep the selection.
    sort_link = unescape(re.search(r'<a class="sort-link" href="([^"]+)"', content).group(1))
    assert parse_qs(urlsplit(sort_link).query)["selected"] == chosen


def test_a_malformed_selected_run_id_is_an_error_naming_it(viewer_client, sweep):
    experiment, _ = sweep
    response = viewer_client.get(table(experiment), {"selected": ["<b>nope</b>"]})
    assert response.status_code == 400
    assert "selected: &#x27;&lt;b&gt;nope&lt;/b&gt;&#x27; is not a run id (32 hexadecimal digits)" in (
        response.content.decode()
    )


def test_the_total_counts_every_matching_run_not_only_this_page(viewer_client, sweep):
    experiment, _ = sweep
    response = viewer_client.get(
        table(experiment), {"page_size": "25", "filter": "params.optimizer = 'adam'"}
    )
    assert response.context["page"].total == 3
    summary = re.search(
        r'<p class="result-summary" id="result-summary">(.*?)</p>', response.content.decode(), re.S
    )
    assert " ".join(re.sub("<[^>]+>", "", summary.group(1)).split()) == "3 matching runs · 3 on this page"


def test_a_count_stops_past_its_limit(sweep):
    experiment, _ = sweep
    runs = Run.objects.filter(experiment=experiment)
    assert count_runs(runs=runs, limit=4) == 5  # "more than 4"
    assert count_runs(runs=runs, limit=10) == 6


def test_runs_of_several_experiments_show_in_one_table_with_their_experiment(
    viewer_client, sweep, make_experiment, make_run, django_assert_max_num_queries
):
    experiment, _ = sweep
    other = make_experiment("other")
    make_run(other, "elsewhere", params={"lr": "1"}, metrics={"val_f1": 1.5}, minutes=30)
    url = reverse("dashboard:runs")
    viewer_client.get(url, {"experiments": [experiment.pk]})  # warm the session
    with django_assert_max_num_queries(12 + (connection.vendor == "postgresql")):  # see the run-table test
        response = viewer_client.get(
            url, {"experiments": [experiment.pk, other.pk], "order_by": "metrics.val_f1 DESC"}
        )
    assert response.status_code == 200
    assert names(response)[:2] == ["elsewhere", "run-5"]
    assert response.context["page"].total == 7
    content = response.content.decode()
    assert ">Experiment<" in content and ">other<" in content
    assert "Runs of 2 experiments" in content


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ({}, 400, "experiments: choose at least one experiment"),
        ({"experiments": "abc"}, 400, "experiment_id: &#x27;abc&#x27; is not an experiment id"),
        ({"experiments": "987654"}, 404, None),
    ],
)
def test_a_table_of_experiments_refuses_missing_or_unknown_ones(viewer_client, query, status, message):
    response = viewer_client.get(reverse("dashboard:runs"), query)
    assert response.status_code == status
    if message:
        assert message in response.content.decode()


def test_groups_count_runs_and_summarise_a_metric_in_the_database(sweep):
    experiment, _ = sweep
    page = group_runs(
        user=SYSTEM_READER, experiment_ids=[experiment.pk], group_by=["optimizer"], metric="val_f1"
    )
    assert [(g.values, g.count) for g in page.groups] == [(("adam",), 3), (("sgd",), 3)]
    adam, sgd = page.groups
    assert (adam.min, adam.max) == (0.5, 0.7)
    assert adam.mean == pytest.approx(0.6)
    assert sgd.mean == pytest.approx(0.9)
    two = group_runs(
        user=SYSTEM_READER,
        experiment_ids=[experiment.pk],
        group_by=["optimizer", "lr"],
        filter_string="metrics.val_f1 > 0.55",
    )
    assert [(g.values, g.count, g.mean) for g in two.groups] == [
        (("adam", "0.001"), 1, None), (("adam", "0.01"), 1, None), (("sgd", "0.001"), 1, None),
        (("sgd", "0.01"), 1, None), (("sgd", "0.1"), 1, None),
    ]  # fmt: skip


def test_runs_without_the_grouped_param_form_their_own_group(sweep, make_run):
    experiment, _ = sweep
    make_run(experiment, "no-optimizer", params={"lr": "0.1"}, minutes=40)
    page = group_runs(user=SYSTEM_READER, experiment_ids=[experiment.pk], group_by=["optimizer"])
    assert [(g.values, g.count) for g in page.groups] == [(("adam",), 3), (("sgd",), 3), ((None,), 1)]


def test_the_grouped_table_expands_a_group_to_its_runs(viewer_client, sweep, django_assert_max_num_queries):
    experiment, _ = sweep
    query = {"group_by": "optimizer", "group_metric": "val_f1"}
    response = viewer_client.get(table(experiment), query)
    content = response.content.decode()
    assert response.status_code == 200
    assert response.context["table"] is None
    rows = re.findall(r'<tr class="group-row[^"]*">(.*?)</tr>', content, re.S)
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", row, re.S) for row in rows]
    assert [re.sub("<[^>]+>", "", c[1]) for c in cells] == ["adam", "sgd"]
    assert [c[2] for c in cells] == ["3", "3"]
    assert '<span title="0.6">0.6</span>' in cells[0][3] or 'title="0.6000000000000001"' in cells[0][3]
    expand = unescape(re.search(r'<a class="group-toggle" href="([^"]+)"', content).group(1))
    assert parse_qs(urlsplit(expand).query)["expand"] == ['["adam"]']

    # Session, user, role, experiment, key set, groups, saved views, the experiment's audit
    # history; then one page of the group.
    with django_assert_max_num_queries(14):  # + the permission
        expanded = viewer_client.get(table(experiment) + expand)
    runs_row = re.search(
        r'<tr class="group-runs">(.*?)</tr>\s*<tr class="group-row', expanded.content.decode(), re.S
    )
    assert sorted(re.findall(r">(run-\d)</a>", runs_row.group(1))) == ["run-0", "run-1", "run-2"]


def test_an_expanded_group_larger_than_a_page_links_to_all_its_runs(viewer_client, make_experiment, make_run):
    experiment = make_experiment("big-groups")
    for index in range(27):
        make_run(experiment, f"r{index:02d}", params={"opt": "it's adam" if index < 26 else "sgd"})
    query = {"group_by": "opt", "filter": "attributes.status != 'KILLED'", "expand": '["it\'s adam"]'}
    content = viewer_client.get(table(experiment), query).content.decode()
    assert "The first 25 of 26 runs." in content
    found = re.search(r'<a class="group-all" href="([^"]+)">All 26 in the table</a>', content)
    link = unescape(found.group(1))
    params = parse_qs(urlsplit(link).query)
    assert "group_by" not in params and "expand" not in params
    assert params["filter"] == ["(attributes.status != 'KILLED') and params.opt = 'it''s adam'"]
    response = viewer_client.get(table(experiment) + link)
    assert response.context["filter_error"] is None
    shown = re.findall(r">(r\d\d)</a>", response.content.decode())
    assert len(shown) == 25 and "r26" not in shown  # a first page of the group's runs alone


def test_hide_constant_drops_columns_that_are_the_same_in_every_run(viewer_client, sweep):
    experiment, _ = sweep
    shown = viewer_client.get(table(experiment)).content.decode()
    assert ">seed<" in shown.split("<table")[1]
    response = viewer_client.get(table(experiment), {"hide_constant": "on"})
    head = response.content.decode().split("<table")[1].split("</thead>")[0]
    assert ">seed<" not in head  # "7" everywhere
    assert ">lr<" in head and ">digits<" in head  # the dataset digest differs
    assert response.context["hidden_constant"] == ["param:seed"]


def read_csv(response) -> list[list[str]]:
    assert isinstance(response, StreamingHttpResponse)
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_csv_export_streams_every_matching_run_of_the_view(viewer_client, sweep, monkeypatch):
    experiment, runs = sweep
    monkeypatch.setattr(run_table_views, "CSV_CHUNK", 2)  # three keyset pages for six runs
    response = viewer_client.get(
        reverse("dashboard:run-export"),
        {
            "experiments": experiment.pk,
            "order_by": "metrics.val_f1 ASC",
            "columns_set": "1",
            "columns": ["metric:val_f1", "param:lr", "attr:status", "dataset:digits"],
            "filter": "params.optimizer = 'adam' or params.lr = '0.1'",
        },
    )
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="grid.csv"'
    rows = read_csv(response)
    assert rows[0] == ["run_id", "name", "status", "metrics.val_f1", "params.lr", "datasets.digits"]
    assert [row[1] for row in rows[1:]] == ["run-0", "run-1", "run-2", "run-3"]
    assert rows[1] == [runs[0].uuid, "run-0", "FINISHED", "0.5", "0.1", f"2.1 {'0' * 64}"]


def test_csv_export_reads_runs_page_by_page_while_it_streams(sweep, monkeypatch):
    experiment, _ = sweep
    with CaptureQueriesContext(connection) as queries:
        stream = iter_runs(user=SYSTEM_READER, experiment_ids=[experiment.pk], chunk_size=2)
        first = [next(stream), next(stream)]
        after_one_page = len(queries.captured_queries)
        rest = list(stream)
    assert [d.run.name for d in first + rest] == [f"run-{i}" for i in range(5, -1, -1)]
    # One page costs a fixed number of queries; the rest came only when the stream asked for them.
    assert len(queries.captured_queries) >= 3 * after_one_page - 2


def test_csv_export_of_many_runs_stays_in_order(viewer_client, experiment, contributor):
    start = timezone.now()
    Run.objects.bulk_create(
        [
            Run(experiment=experiment, name=f"bulk-{i:04d}", start_time=start - timedelta(seconds=i))
            for i in range(2500)
        ]
    )
    Param.objects.bulk_create([Param(run=run, key="i", value=run.name) for run in Run.objects.all()])
    response = viewer_client.get(reverse("dashboard:run-export"), {"experiments": experiment.pk})
    rows = read_csv(response)
    assert len(rows) == 2501
    assert [row[1] for row in rows[1:]] == [f"bulk-{i:04d}" for i in range(2500)]


def test_csv_cells_that_look_like_formulas_are_quoted(viewer_client, make_experiment, make_run):
    experiment = make_experiment()
    make_run(experiment, '=HYPERLINK("http://x")', params={"note": "+1+1", "delta": "-0.5"})
    rows = read_csv(viewer_client.get(reverse("dashboard:run-export"), {"experiments": experiment.pk}))
    header, row = rows[0], rows[1]
    assert row[1] == '\'=HYPERLINK("http://x")'
    assert row[header.index("params.note")] == "'+1+1"
    assert row[header.index("params.delta")] == "-0.5"  # a number stays a number


def test_csv_export_keeps_every_digit_the_table_rounds(viewer_client, make_experiment, make_run):
    experiment = make_experiment()
    metrics = {"precise": 1234567.891, "tiny": 0.000123456789, "sum": 0.1 + 0.2, "neg": -2.5e-07}
    make_run(experiment, "exact", metrics=metrics)
    rows = read_csv(viewer_client.get(reverse("dashboard:run-export"), {"experiments": experiment.pk}))
    header, row = rows[0], rows[1]
    exported = {key: row[header.index(f"metrics.{key}")] for key in metrics}
    assert exported == {"precise": "1234567.891", "tiny": "0.000123456789", "sum": "0.30000000000000004",
                        "neg": "-2.5e-07"}  # fmt: skip
    assert {key: float(text) for key, text in exported.items()} == metrics


def test_csv_export_refuses_a_bad_filter_before_streaming(viewer_client, sweep):
    experiment, _ = sweep
    response = viewer_client.get(
        reverse("dashboard:run-export"), {"experiments": experiment.pk, "filter": "x >"}
    )
    assert response.status_code == 400
    assert response.content.decode().startswith("filter: Syntax error at position")


def test_a_saved_view_is_stored_audited_and_shown_to_the_team(client, contributor, viewer, sweep):
    experiment, _ = sweep
    client.force_login(contributor)
    query = "filter=params.lr+%3D+%270.1%27&order_by=metrics.val_f1+DESC&selected=" + "a" * 32
    response = client.post(
        reverse("dashboard:saved-view-save", args=[experiment.pk]), {"name": "best lr 0.1", "query": query}
    )
    assert response.status_code == 302
    assert response["Location"] == table(experiment) + "?" + query
    view = SavedView.objects.get()
    assert (view.name, view.query, view.created_by) == ("best lr 0.1", query, contributor)
    event = AuditEvent.objects.get(action="saved_view.saved")
    assert event.actor == contributor
    assert event.after == {"experiment": experiment.pk, "name": "best lr 0.1", "query": query}

    # Saving the same name again replaces the query, audited with what it was before.
    client.post(
        reverse("dashboard:saved-view-save", args=[experiment.pk]), {"name": "best lr 0.1", "query": "x=1"}
    )
    assert SavedView.objects.get().query == "x=1"
    assert AuditEvent.objects.filter(action="saved_view.saved").latest("sequence").before == {"query": query}

    team = Client()
    team.force_login(viewer)
    page = team.get(table(experiment)).content.decode()
    assert f'<a href="{table(experiment)}?x=1">best lr 0.1</a>' in page


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("filter=params.lr+%3D+%27", "query: it cannot be used: Syntax error at position"),
        ("order_by=metrics.val_f1+SIDEWAYS", "query: it cannot be used: order_by[0]"),
    ],
    ids=["filter", "order_by"],
)
def test_a_view_whose_filter_or_order_does_not_parse_is_not_saved(client, contributor, sweep, query, words):
    experiment, _ = sweep
    client.force_login(contributor)
    response = client.post(
        reverse("dashboard:saved-view-save", args=[experiment.pk]),
        {"name": "broken", "query": query},
        follow=True,
    )
    assert words in response.content.decode()
    assert not SavedView.objects.exists()


def test_a_view_saved_on_a_later_page_opens_on_its_first(client, contributor, sweep):
    experiment, _ = sweep
    client.force_login(contributor)
    query = "filter=params.lr+%3D+%270.1%27&page_token=abc&total=40&find_column=loss"  # nor a column search
    url = reverse("dashboard:saved-view-save", args=[experiment.pk])
    response = client.post(url, {"name": "v", "query": query})
    assert SavedView.objects.get().query == "filter=params.lr+%3D+%270.1%27"
    assert client.get(response["Location"]).status_code == 200
    with pytest.raises(InvalidInput, match="leave out page_token"):  # the service's own rule
        services.save_view(actor=contributor, experiment=experiment, name="w", query="page_token=abc")


def test_a_viewer_cannot_save_or_delete_views_and_is_offered_neither(viewer_client, contributor, sweep):
    experiment, _ = sweep
    view = services.save_view(actor=contributor, experiment=experiment, name="theirs", query="a=1")
    page = viewer_client.get(table(experiment)).content.decode()
    assert 'id="save-view-form"' not in page
    assert "Delete the view" not in page
    assert ">theirs</a>" in page  # still listed, to open
    response = viewer_client.post(
        reverse("dashboard:saved-view-save", args=[experiment.pk]), {"name": "mine", "query": ""}, follow=True
    )
    assert "Saving a view needs the contributor role." in response.content.decode()
    assert viewer_client.post(reverse("dashboard:saved-view-delete", args=[view.pk])).status_code == 403
    assert list(SavedView.objects.values_list("name", flat=True)) == ["theirs"]


def test_a_colleagues_view_is_neither_replaced_nor_deleted_but_a_manager_may(
    client, contributor, admin, sweep, settings
):
    """Saving under a name someone else's view holds is refused, naming them; their view keeps
    its query. An admin (MANAGE on every experiment) may replace or delete it."""
    settings.DEFAULT_PERMISSION = "EDIT"
    experiment, _ = sweep
    colleague = UserFactory(username="cleo")
    assign_role(user=colleague, role=Role.CONTRIBUTOR)
    services.save_view(actor=contributor, experiment=experiment, name="best", query="a=1")
    client.force_login(colleague)
    page = client.get(table(experiment)).content.decode()
    assert 'id="save-view-form"' in page
    assert "Delete the view best" not in page
    response = client.post(
        reverse("dashboard:saved-view-save", args=[experiment.pk]),
        {"name": "best", "query": "b=2"},
        follow=True,
    )
    assert f"name: &#x27;best&#x27; is {contributor.username}&#x27;s view: save yours under another name" in (
        response.content.decode()
    )
    view = SavedView.objects.get()
    assert (view.query, view.created_by) == ("a=1", contributor)
    assert client.post(reverse("dashboard:saved-view-delete", args=[view.pk])).status_code == 403
    assert SavedView.objects.filter(pk=view.pk).exists()

    client.force_login(admin)
    assert "Delete the view best" in client.get(table(experiment)).content.decode()
    client.post(reverse("dashboard:saved-view-save", args=[experiment.pk]), {"name": "best", "query": "c=3"})
    assert SavedView.objects.get().query == "c=3"
    client.post(reverse("dashboard:saved-view-delete", args=[view.pk]))
    assert not SavedView.objects.exists()


def test_deleting_a_saved_view_is_audited(client, contributor, sweep):
    experiment, _ = sweep
    client.force_login(contributor)
    client.post(reverse("dashboard:saved-view-save", args=[experiment.pk]), {"name": "v", "query": "a=1"})
    view = SavedView.objects.get()
    response = client.post(reverse("dashboard:saved-view-delete", args=[view.pk]))
    assert response.status_code == 302
    assert not SavedView.objects.exists()
    event = AuditEvent.objects.get(action="saved_view.deleted")
    assert event.before == {"experiment": experiment.pk, "name": "v", "query": "a=1"}


def test_saving_a_view_needs_a_csrf_token(contributor, sweep):
    experiment, _ = sweep
    client = Client(enforce_csrf_checks=True)
    client.force_login(contributor)
    response = client.post(reverse("dashboard:saved-view-save", args=[experiment.pk]), {"name": "v"})
    assert response.status_code == 403
    assert not SavedView.objects.exists()


def test_a_saved_view_of_several_experiments_opens_that_table(client, contributor, sweep, make_experiment):
    experiment, _ = sweep
    other = make_experiment("other")
    client.force_login(contributor)
    query = f"experiments={experiment.pk}&experiments={other.pk}"
    response = client.post(
        reverse("dashboard:saved-view-save", args=[experiment.pk]), {"name": "both", "query": query}
    )
    assert response["Location"] == reverse("dashboard:runs") + "?" + query
    page = client.get(reverse("dashboard:runs") + "?" + query).content.decode()
    assert ">both</a>" in page


def test_a_metric_param_or_tag_sort_read_through_the_indexes_pages_like_the_plain_sort(postgres, contributor):
    """Runs with the key (NaN newest included), without it, and ties, across page edges; param
    values read a value at a time, and values longer than the indexed prefix, which are not."""
    from config.inputs import TagInput
    from tracker.search import apply_search, page_after
    from tracker.services import MetricInput, ParamInput, create_experiment, log_batch, start_run

    experiment = create_experiment(actor=contributor, name="split")
    start = timezone.now()
    for index in range(23):
        run = start_run(
            actor=contributor,
            experiment=experiment,
            name=f"r{index}",
            start_time=start - timedelta(minutes=index),
        )
        value = float("nan") if index % 7 == 3 else (index % 5) / 10
        if index % 4 != 1:
            log_batch(actor=contributor, run=run, metrics=[MetricInput("acc", value, 0, 1)])
        if index % 5 != 2:
            log_batch(actor=contributor, run=run, params=[ParamInput("lr", str(index % 4) * (1 + index % 3))])
        note = "a" * 250 + str(index % 3) if index % 2 else str(index % 3)  # long ones share a prefix
        log_batch(
            actor=contributor, run=run, params=[ParamInput("note", note)], tags=[TagInput("team", note[-1])]
        )

    def every_page(split: bool, order: str) -> list[str]:
        names, token = [], None
        while True:
            result = apply_search(
                Run.objects.filter(experiment=experiment),
                filter_string=None,
                order_by=[order],
                split_metric_sort=split,
            )
            page, token = page_after(result, cursor=token, limit=4)
            names += [run.name for run in page]
            if token is None:
                return names

    orders = ["metrics.acc DESC", "metrics.acc ASC", "params.lr ASC", "params.lr DESC", "params.note ASC"]
    for order in [*orders, "params.note DESC", "tags.team ASC", "tags.team DESC"]:
        plain = every_page(False, order)
        assert len(plain) == 23
        assert every_page(True, order) == plain


def test_later_pages_show_the_first_pages_total_without_counting_again(viewer_client, sweep):
    experiment, _ = sweep
    first = viewer_client.get(table(experiment), {"page_size": "25", "filter": "params.seed = '7'"})
    assert first.context["total"] == 6
    with CaptureQueriesContext(connection) as queries:
        later = viewer_client.get(
            table(experiment),
            {
                "page_size": "25",
                "filter": "params.seed = '7'",
                "page_token": forged_token('["2025-03-01T12:05:00+00:00", "0"]', signature=run_sort()),
                "total": "6",
            },
        )
    assert later.status_code == 200, later.content
    assert later.context["total"] == 6
    assert not any("COUNT(" in query["sql"].upper() for query in queries.captured_queries)


@pytest.fixture
def crowd(make_experiment, make_run):
    """27 runs, more than the smallest page (25) holds; a third of them use sgd."""
    experiment = make_experiment("crowd")
    for index in range(27):
        make_run(experiment, f"run-{index:02d}", params={"optimizer": "sgd" if index % 3 == 0 else "adam"})
    return experiment


def count_of(client, experiment, **query):
    return client.get(reverse("dashboard:run-count"), {"experiments": [experiment.pk], **query})


def test_a_page_without_every_match_is_served_without_counting_and_links_its_count(viewer_client, crowd):
    with CaptureQueriesContext(connection) as queries:
        response = viewer_client.get(table(crowd), {"page_size": "25", "filter": "params.optimizer != 'x'"})
    assert response.status_code == 200
    assert not any("COUNT(" in query["sql"].upper() for query in queries.captured_queries)
    assert response.context["total"] is None
    content = response.content.decode()
    count_url = f"/runs/count.json?experiments={crowd.pk}&amp;filter=params.optimizer+%21%3D+%27x%27"
    assert f'<span id="run-total" data-count-url="{count_url}"><a href="{count_url}">Counting…</a>' in content
    summary = re.search(r'<p class="result-summary" id="result-summary">(.*?)</p>', content, re.S)
    assert (
        " ".join(re.sub("<[^>]+>", "", summary.group(1)).split())
        == "Counting… matching runs · 25 on this page"
    )
    answer = viewer_client.get(unescape(count_url))
    assert answer.json() == {"total": 27, "text": "27"}


def test_a_first_page_holding_every_match_knows_its_total_without_a_count_query(viewer_client, crowd):
    with CaptureQueriesContext(connection) as queries:
        response = viewer_client.get(table(crowd), {"page_size": "25", "filter": "params.optimizer = 'sgd'"})
    assert response.context["total"] == 9
    assert "data-count-url" not in response.content.decode()
    assert not any("COUNT(" in query["sql"].upper() for query in queries.captured_queries)


def test_the_count_endpoint_counts_the_filtered_runs_of_several_experiments(
    viewer_client, crowd, sweep, django_assert_max_num_queries
):
    other, _ = sweep
    url = reverse("dashboard:run-count")
    viewer_client.get(url, {"experiments": [crowd.pk]})  # warm the session
    with django_assert_max_num_queries(6):  # session, user, role, experiments, permissions, the count
        response = viewer_client.get(
            url, {"experiments": [crowd.pk, other.pk], "filter": "params.optimizer = 'sgd'"}
        )
    assert response.status_code == 200
    assert response.json() == {"total": 9 + 3, "text": "12"}
    assert count_of(viewer_client, crowd).json() == {"total": 27, "text": "27"}


def test_a_count_past_its_limit_reads_more_than_the_limit():
    assert run_table_views.total_text(10_001) == "More than 10,000"
    assert run_table_views.total_text(10_000) == "10000"


def test_the_count_endpoint_names_a_bad_filter_or_a_missing_experiment(viewer_client, crowd):
    response = count_of(viewer_client, crowd, filter="params.optimizer = ")
    assert response.status_code == 400
    assert response.json() == {
        "error": "filter: Syntax error at position 19 (line 1, column 20): "
        "expected one of a quoted string, a number, got end of input",
        "field": "filter",
    }
    missing = viewer_client.get(reverse("dashboard:run-count"), {"filter": "params.optimizer = 'sgd'"})
    assert missing.status_code == 400
    assert missing.json() == {"error": "experiments: choose at least one experiment", "field": "experiments"}
    malformed = viewer_client.get(reverse("dashboard:run-count"), {"experiments": ["abc"]})
    assert malformed.status_code == 400
    assert malformed.json() == {
        "error": "experiment_id: 'abc' is not an experiment id",
        "field": "experiment_id",
    }
    unknown = viewer_client.get(reverse("dashboard:run-count"), {"experiments": [crowd.pk + 1000]})
    assert unknown.status_code == 404
    assert unknown.json()["error"] == f"experiment_id: experiment {crowd.pk + 1000} does not exist"


def test_the_count_endpoint_is_for_logged_in_users_with_a_role(client, outsider, crowd):
    anonymous = count_of(client, crowd)
    assert anonymous.status_code == 302 and "/login" in anonymous["Location"]
    client.force_login(outsider)
    assert count_of(client, crowd).status_code == 403


def test_a_filter_error_page_counts_the_unfiltered_runs_it_shows(viewer_client, crowd):
    response = viewer_client.get(table(crowd), {"page_size": "25", "filter": "params.optimizer = "})
    assert response.status_code == 400
    assert f'data-count-url="/runs/count.json?experiments={crowd.pk}"' in response.content.decode()
