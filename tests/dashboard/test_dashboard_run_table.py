"""The run table: columns, filter, server-side sort, keyset pages and bounded queries."""

from __future__ import annotations

import math
import re
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.urls import reverse

from accounts.permissions import SYSTEM_READER
from config.exceptions import InvalidInput
from tracker.selectors import search_runs
from tracker.services import DatasetSpec

HOSTILE = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


def run_names(response) -> list[str]:
    return [data.run.name for data in response.context["page"].runs]


@pytest.fixture
def sweep(make_experiment, make_run):
    experiment = make_experiment("lr-sweep")
    for index, (lr, f1, version) in enumerate(
        [("0.1", 0.80, "2.0"), ("0.01", 0.91, "2.1"), ("0.001", 0.87, "2.1")]
    ):
        make_run(
            experiment,
            f"lr-{lr}",
            params={"lr": lr, "optimizer": "adam"},
            metrics={"val_f1": f1, "loss": [1.0, 0.5, 0.25]},
            datasets=[
                DatasetSpec(name="digits", digest=f"{index:064x}", version=version, context="training")
            ],
            minutes=index,
        )
    return experiment


def table_url(experiment, **query) -> str:
    url = reverse("dashboard:run-table", args=[experiment.pk])
    return url if not query else url + "?" + "&".join(f"{k}={v}" for k, v in query.items())


def test_run_table_shows_runs_with_their_params_and_latest_metrics(viewer_client, sweep):
    response = viewer_client.get(reverse("dashboard:run-table", args=[sweep.pk]))
    assert response.status_code == 200
    content = response.content.decode()
    for header in ("Name", "Status", "Start (UTC)", "Duration", "User", "lr", "optimizer", "val_f1", "loss"):
        assert re.search(rf">{re.escape(header)}<", content), header
    assert run_names(response) == ["lr-0.001", "lr-0.01", "lr-0.1"]  # newest first by default
    run = response.context["page"].runs[0].run
    assert f'href="{reverse("dashboard:run-detail", args=[run.uuid])}"' in content
    assert '<span class="badge status-finished">FINISHED</span>' in content
    assert "carl-contributor" in content
    assert "1m 35s" in content  # the duration
    assert '<span title="0.87 at step 0">0.87</span>' in content  # the full value on hover
    assert '<span title="0.25 at step 2">0.25</span>' in content


def test_a_nan_metric_shows_as_nan(viewer_client, make_experiment, make_run):
    experiment = make_experiment()
    make_run(experiment, "diverged", metrics={"loss": [0.5, math.nan]})
    content = viewer_client.get(reverse("dashboard:run-table", args=[experiment.pk])).content.decode()
    assert '<span title="NaN at step 1">NaN</span>' in content


def test_a_hostile_experiment_name_is_escaped_in_the_experiment_column(
    viewer_client, make_experiment, make_run
):
    hostile, plain = make_experiment(HOSTILE), make_experiment("plain")
    make_run(hostile, "a")
    make_run(plain, "b")
    url = f"{reverse('dashboard:runs')}?experiments={hostile.pk}&experiments={plain.pk}"
    content = viewer_client.get(url).content.decode()
    assert HOSTILE not in content
    assert f'<td class="attr-experiment">{ESCAPED}</td>' in content


def test_hostile_run_names_and_params_are_escaped(viewer_client, make_experiment, make_run):
    experiment = make_experiment()
    make_run(experiment, HOSTILE, params={"note": HOSTILE}, tags={"team": HOSTILE})
    content = viewer_client.get(reverse("dashboard:run-table", args=[experiment.pk])).content.decode()
    assert HOSTILE not in content
    # The name link and its title, the checkbox's label, and the param cell and its title.
    assert content.count(ESCAPED) == 5
    assert f'title="{ESCAPED}"' in content


def test_the_filter_narrows_the_rows(viewer_client, sweep):
    response = viewer_client.get(
        reverse("dashboard:run-table", args=[sweep.pk]),
        {"filter": "datasets.version = '2.1' and metrics.val_f1 > 0.88"},
    )
    assert response.status_code == 200
    assert run_names(response) == ["lr-0.01"]
    assert (
        'value="datasets.version = &#x27;2.1&#x27; and metrics.val_f1 &gt; 0.88"' in response.content.decode()
    )


def test_a_syntax_error_shows_a_caret_under_its_position_and_keeps_the_table(viewer_client, sweep):
    bad = "metrics.val_f1 > and params.lr = '0.1'"
    with pytest.raises(InvalidInput) as expected:
        search_runs(user=SYSTEM_READER, experiment_ids=[sweep.pk], filter_string=bad)
    assert expected.value.field == "filter"
    assert expected.value.message == (
        "Syntax error at position 17 (line 1, column 18): "
        "expected one of a quoted string, a number, got 'and'"
    )

    response = viewer_client.get(reverse("dashboard:run-table", args=[sweep.pk]), {"filter": bad})

    assert response.status_code == 400
    content = response.content.decode()
    error_box = re.search(
        r'<div class="form-error filter-error" role="alert" id="filter-error">(.*?)</div>', content, re.S
    )
    assert error_box is not None
    assert f"<p>{expected.value.message}</p>" in unescape(error_box.group(1))
    caret = re.search(r'<pre class="caret"[^>]*>(.*?)</pre>', content, re.S)
    assert unescape(caret.group(1)) == f"{bad}\n{' ' * 17}^"
    assert 'name="filter"' in content  # the form is still there to fix the filter
    assert 'class="column-picker"' in content  # and so is the column picker
    # The table stays, unfiltered, and says so.
    assert sorted(run_names(response)) == ["lr-0.001", "lr-0.01", "lr-0.1"]
    assert "the filter was not applied" in content


def test_a_caret_points_into_the_right_line_of_a_multi_line_filter(viewer_client, sweep):
    bad = "params.lr = '0.1'\nand metrics.val_f1 >> 0.8"
    response = viewer_client.get(reverse("dashboard:run-table", args=[sweep.pk]), {"filter": bad})
    caret = re.search(r'<pre class="caret"[^>]*>(.*?)</pre>', response.content.decode(), re.S)
    assert unescape(caret.group(1)) == "and metrics.val_f1 >> 0.8\n" + " " * 20 + "^"


def test_a_filter_naming_a_key_no_run_has_warns_which_key_and_still_runs(viewer_client, sweep):
    response = viewer_client.get(
        reverse("dashboard:run-table", args=[sweep.pk]),
        {
            "filter": "metrics.val_f2 > 0.5 or params.lr = '0.1' or tags.tema = 'x' "
            "or params.lerning_rate IS NULL"
        },
    )
    assert response.status_code == 200
    assert response.context["unknown_keys"] == ["metrics.val_f2", "tags.tema", "params.lerning_rate"]
    warning = re.search(
        r'<div class="form-warning" role="status" id="unknown-keys">(.*?)</div>',
        response.content.decode(),
        re.S,
    )
    assert (
        "<code>metrics.val_f2</code>, <code>tags.tema</code>, <code>params.lerning_rate</code>"
        in warning.group(1)
    )
    # Still a valid query: every run lacks params.lerning_rate.
    assert sorted(run_names(response)) == ["lr-0.001", "lr-0.01", "lr-0.1"]


def test_a_filter_on_known_keys_gives_no_warning(viewer_client, sweep):
    response = viewer_client.get(
        reverse("dashboard:run-table", args=[sweep.pk]),
        {
            "filter": "metrics.val_f1 > 0.5 and params.lr = '0.1' and datasets.version = '2.0' "
            "and attributes.status = 'FINISHED'"
        },
    )
    assert response.context["unknown_keys"] == []
    assert 'id="unknown-keys"' not in response.content.decode()


def test_a_hostile_filter_is_escaped_in_the_box_and_the_error(viewer_client, sweep):
    response = viewer_client.get(reverse("dashboard:run-table", args=[sweep.pk]), {"filter": HOSTILE})
    assert response.status_code == 400
    assert HOSTILE not in response.content.decode()
    assert "<script>alert" not in response.content.decode()


def test_a_bad_order_by_is_reported_above_the_table(viewer_client, sweep):
    response = viewer_client.get(reverse("dashboard:run-table", args=[sweep.pk]), {"order_by": "bogus.lr"})
    assert response.status_code == 400
    assert "Invalid entity type &#x27;bogus&#x27;" in response.content.decode()


@pytest.mark.parametrize(
    ("order_by", "expected"),
    [
        ("metrics.val_f1 DESC", ["lr-0.01", "lr-0.001", "lr-0.1"]),
        ("metrics.val_f1 ASC", ["lr-0.1", "lr-0.001", "lr-0.01"]),
        ("params.lr ASC", ["lr-0.001", "lr-0.01", "lr-0.1"]),
        ("attributes.start_time ASC", ["lr-0.1", "lr-0.01", "lr-0.001"]),
    ],
)
def test_sorting_orders_the_rows(viewer_client, sweep, order_by, expected):
    response = viewer_client.get(reverse("dashboard:run-table", args=[sweep.pk]), {"order_by": order_by})
    assert run_names(response) == expected


def header_link(content: str, header: str) -> str:
    match = re.search(
        rf'<a class="sort-link" href="([^"]+)" data-sort-key="[^"]*" data-descending-first="[01]" '
        rf'title="Sort by {re.escape(header)} \(shift-click: then by\)">',
        content,
    )
    assert match, header
    return unescape(match.group(1))


def test_clicking_a_metric_header_sorts_by_it_best_first_then_flips(viewer_client, sweep):
    url = reverse("dashboard:run-table", args=[sweep.pk])
    first = viewer_client.get(url, {"filter": "params.optimizer = 'adam'", "page_size": "50"})
    link = header_link(first.content.decode(), "val_f1")
    query = parse_qs(urlsplit(link).query)
    assert query == {
        "order_by": ["metrics.val_f1 DESC"],
        "filter": ["params.optimizer = 'adam'"],
        "page_size": ["50"],
    }

    second = viewer_client.get(url + link)
    assert run_names(second) == ["lr-0.01", "lr-0.001", "lr-0.1"]
    content = second.content.decode()
    assert 'aria-sort="descending"' in content
    assert parse_qs(urlsplit(header_link(content, "val_f1")).query)["order_by"] == ["metrics.val_f1 ASC"]


def test_param_and_attribute_headers_sort_ascending_first(viewer_client, sweep):
    content = viewer_client.get(reverse("dashboard:run-table", args=[sweep.pk])).content.decode()
    assert parse_qs(urlsplit(header_link(content, "lr")).query)["order_by"] == ["params.lr ASC"]
    assert parse_qs(urlsplit(header_link(content, "Name")).query)["order_by"] == ["attributes.run_name ASC"]
    # Runs are newest-first by default, so the Start header flips that.
    assert parse_qs(urlsplit(header_link(content, "Start (UTC)")).query)["order_by"] == [
        "attributes.start_time ASC"
    ]


def test_keys_that_need_quoting_get_sortable_headers(viewer_client, make_experiment, make_run):
    experiment = make_experiment()
    make_run(experiment, "a", metrics={"val loss": 0.3})
    make_run(experiment, "b", metrics={"val loss": 0.1})
    content = viewer_client.get(reverse("dashboard:run-table", args=[experiment.pk])).content.decode()
    link = header_link(content, "val loss")
    assert parse_qs(urlsplit(link).query)["order_by"] == ["metrics.`val loss` DESC"]
    response = viewer_client.get(reverse("dashboard:run-table", args=[experiment.pk]) + link)
    assert run_names(response) == ["a", "b"]


def test_pagination_returns_every_run_exactly_once(viewer_client, make_experiment, make_run):
    experiment = make_experiment()
    for index in range(57):
        make_run(experiment, f"run-{index:02d}", metrics={"acc": (index * 7) % 10 / 10}, minutes=index % 5)
    url = reverse("dashboard:run-table", args=[experiment.pk])
    seen, link, pages = [], f"{url}?order_by=metrics.acc+DESC&page_size=25", 0
    while link:
        response = viewer_client.get(link)
        assert response.status_code == 200
        seen += run_names(response)
        pages += 1
        match = re.search(r'<a class="button" rel="next" href="([^"]+)">', response.content.decode())
        link = url + unescape(match.group(1)) if match else None
    assert pages == 3
    assert sorted(seen) == [f"run-{index:02d}" for index in range(57)]
    assert len(seen) == len(set(seen))


def test_later_pages_link_back_to_the_first_page(viewer_client, make_experiment, make_run):
    experiment = make_experiment()
    for index in range(30):
        make_run(experiment, f"run-{index:02d}", minutes=index)
    url = reverse("dashboard:run-table", args=[experiment.pk])
    first = viewer_client.get(url, {"page_size": "25", "filter": "attributes.status = 'FINISHED'"})
    assert "First page" not in first.content.decode()
    token = first.context["page"].next_page_token
    second = viewer_client.get(
        url, {"page_size": "25", "filter": "attributes.status = 'FINISHED'", "page_token": token}
    )
    assert len(run_names(second)) == 5
    match = re.search(r'<a class="button" href="([^"]+)">« First page</a>', second.content.decode())
    assert parse_qs(urlsplit(unescape(match.group(1))).query) == {
        "page_size": ["25"],
        "filter": ["attributes.status = 'FINISHED'"],
    }


def test_page_size_is_selectable_and_validated(viewer_client, make_experiment, make_run):
    experiment = make_experiment()
    for index in range(30):
        make_run(experiment, f"run-{index:02d}", finished=False)
    url = reverse("dashboard:run-table", args=[experiment.pk])
    assert len(run_names(viewer_client.get(url))) == 25
    assert len(run_names(viewer_client.get(url, {"page_size": "50"}))) == 30
    # One that is not offered (an old link, a hand-edited URL) falls back to the default, saying so.
    response = viewer_client.get(url, {"page_size": "7"})
    assert response.status_code == 200 and len(run_names(response)) == 25
    assert (
        "Rows: Select a valid choice. 7 is not one of the available choices. Showing its default instead."
        in response.content.decode()
    )


def test_a_filter_over_the_length_limit_is_a_400_that_says_so(viewer_client, sweep):
    response = viewer_client.get(reverse("dashboard:run-table", args=[sweep.pk]), {"filter": "a" * 10_001})
    assert response.status_code == 400
    message = "Filter: Ensure this value has at most 10000 characters (it has 10001)."
    assert message in response.content.decode()


def test_a_tampered_page_token_is_reported(viewer_client, sweep):
    response = viewer_client.get(reverse("dashboard:run-table", args=[sweep.pk]), {"page_token": "garbage!"})
    assert response.status_code == 400
    assert "page_token: Invalid page token" in response.content.decode()


def test_run_table_runs_a_fixed_number_of_queries(
    viewer_client, make_experiment, make_run, django_assert_max_num_queries
):
    experiment = make_experiment()
    for index in range(30):
        make_run(
            experiment,
            f"run-{index}",
            params={f"p{k}": str(index * k) for k in range(5)},
            metrics={f"m{k}": index / (k + 1) for k in range(5)},
            tags={"team": "vision"},
            datasets=[DatasetSpec(name="digits", digest=f"{index:064x}", version="1")],
            finished=index % 2 == 0,
        )
    url = reverse("dashboard:run-table", args=[experiment.pk])
    viewer_client.get(url)  # warm the session
    # Session, user, role; experiment, page, key set; params, tags, summaries, datasets; saved
    # views; the experiment's audit history. Column keys no longer cost a DISTINCT over the
    # runs, and a page holding every match needs no count (a longer result's total comes from
    # runs/count.json after the page). On PostgreSQL a metric sort reads runs with the metric,
    # then those without, when a page is short.
    with django_assert_max_num_queries(13 + (connection.vendor == "postgresql")):  # + the permission
        response = viewer_client.get(
            url, {"page_size": "50", "order_by": "metrics.m3 DESC", "filter": "params.p1 > 3"}
        )
    assert response.status_code == 200
    assert len(run_names(response)) == 26


def test_dataset_param_and_number_cells_escape_what_they_show():
    from dashboard.tables import DatasetColumn, ParamColumn, number_cell
    from tracker.models import DatasetInput

    dataset = DatasetInput(name="d", digest="<x>", version="<b>1", context="\"'&")
    assert DatasetColumn("d").render([dataset]) == (
        '<span title="digest &lt;x&gt; · &quot;&#x27;&amp;">&lt;b&gt;1 &lt;x&gt; (&quot;&#x27;&amp;)</span>'
    )
    escaped = "&lt;img src=x onerror=alert(1)&gt;&quot;"
    assert ParamColumn("k", entity="params").render({"k": '<img src=x onerror=alert(1)>"'}) == (
        f'<span title="{escaped}">{escaped}</span>'
    )
    assert number_cell(float("nan"), "at <step>") == '<span title="NaN at &lt;step&gt;">NaN</span>'


def group_table_spans(content: str) -> tuple[int, list[int]]:
    """The group table's header cells, and the colspan of each cell that spans the whole table."""
    table = re.search(r'<table class="data-table group-table">\s*<thead>(.*?)</thead>(.*)', content, re.S)
    assert table is not None
    headers = len(re.findall(r"<th[ >]", table.group(1)))
    spans = [int(span) for span in re.findall(r'<tr class="group-runs"><td colspan="(\d+)"', table.group(2))]
    spans += [int(span) for span in re.findall(r'<td colspan="(\d+)" class="empty">', table.group(2))]
    return headers, spans


@pytest.mark.parametrize(("metric", "columns"), [("", 4), ("val_f1", 7)])
def test_an_expanded_group_and_no_groups_span_every_column_of_the_group_table(
    viewer_client, sweep, metric, columns
):
    """The toggle, two params, the run count, and mean/min/max only when a metric is chosen."""
    query = {"group_by": ["lr", "optimizer"], "group_metric": metric}
    response = viewer_client.get(table_url(sweep), query)
    toggle = response.context["group_rows"][0]["toggle_url"]
    expanded = viewer_client.get(table_url(sweep) + toggle).content.decode()
    assert group_table_spans(expanded) == (columns, [columns])
    nothing = viewer_client.get(table_url(sweep), {**query, "filter": "params.lr = 'none'"}).content.decode()
    assert group_table_spans(nothing) == (columns, [columns])
