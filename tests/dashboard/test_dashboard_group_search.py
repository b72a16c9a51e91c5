"""The run table's Group picker stays small however many params and metrics the runs logged, and
finds the others by name: on the server (`find_group`, without JavaScript) and through
runs/columns.json (`kind=param&kind=metric`); the chosen grouping is never dropped by a search."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.urls import reverse

from dashboard.group_picker import group_picker
from dashboard.key_lists import PICKER_KEYS_SHOWN
from tracker.models import SavedView
from tracker.selectors import KeyMatches, KeySets
from tracker.services import DatasetSpec, MetricInput, ParamInput, log_batch, start_run

from .conftest import HOSTILE

pytestmark = pytest.mark.django_db

OPTION = re.compile(r'<option value="(?P<value>[^"]*)"(?P<selected> selected)?>')


def group_picker_html(html: str) -> str:
    return html.split('<details class="group-picker"')[1].split("</details>")[0]


def options(html: str, select_id: str) -> list[tuple[str, bool]]:
    """The (value, selected) options of one of the Group picker's selects, in page order."""
    select = group_picker_html(html).split(f'id="{select_id}"')[1].split("</select>")[0]
    return [(unescape(m["value"]), bool(m["selected"])) for m in OPTION.finditer(select)]


def values(html: str, select_id: str) -> list[str]:
    return [value for value, _ in options(html, select_id)]


def chosen(html: str, select_id: str) -> list[str]:
    return [value for value, selected in options(html, select_id) if selected]


def table_url(experiment) -> str:
    return reverse("dashboard:run-table", args=[experiment.pk])


def hp(index: int) -> str:
    return f"hp{index:03d}/lr"


def layer(index: int) -> str:
    return f"layer{index:03d}/grad_norm"


@pytest.fixture
def wide(make_experiment, make_run):
    """Three runs of 100 params and 120 metrics: every param is 'a' in two runs and 'b' in the
    third, every metric the run's number; a dataset of a hostile name (keys may not hold `<`)."""
    experiment = make_experiment("wide")
    for number in range(3):
        make_run(
            experiment,
            f"r{number}",
            params={hp(i): "a" if number < 2 else "b" for i in range(100)},
            metrics={layer(i): float(number) for i in range(120)},
            datasets=[DatasetSpec(HOSTILE, "0" * 64, "1")],
            minutes=number,
        )
    return experiment


def test_five_thousand_params_and_metrics_give_selects_of_a_bounded_few(
    viewer_client, contributor, make_experiment
):
    experiment = make_experiment("huge")
    run = start_run(actor=contributor, experiment=experiment, name="r1")
    for start in range(0, 5000, 100):
        log_batch(
            actor=contributor,
            run=run,
            params=[ParamInput(f"p{i:04d}", "x") for i in range(start, start + 100)],
        )
    for start in range(0, 5000, 1000):
        metrics = [MetricInput(f"m{i:04d}", float(i)) for i in range(start, start + 1000)]
        log_batch(actor=contributor, run=run, metrics=metrics)

    response = viewer_client.get(table_url(experiment))
    html = response.content.decode()
    assert response.status_code == 200
    assert values(html, "group-by") == [f"p{i:04d}" for i in range(PICKER_KEYS_SHOWN)]
    assert values(html, "group-metric") == ["", *(f"m{i:04d}" for i in range(PICKER_KEYS_SHOWN))]
    assert html.count("<option") == 3 + 50 + 51  # the page sizes, then the Group picker's two selects
    picker = group_picker_html(html)
    assert 'id="group-by-more">and 4,950 more params — type to find them</p>' in picker
    assert 'id="group-metric-more">and 4,950 more metrics — type to find them</p>' in picker
    assert (
        '<span class="muted" id="group-find-status" role="status">Each list shows its first 50 keys and the'
        " chosen ones: type to find the others.</span>" in picker
    )
    assert '<details class="group-picker" id="group-picker">' in html  # closed: nothing chosen or searched

    # A grouping past the first 50 keys: its keys are listed first, chosen, and still bounded.
    grouped = viewer_client.get(
        table_url(experiment), {"group_by": ["p4999", "p0007"], "group_metric": "m4321"}
    )
    html = grouped.content.decode()
    assert grouped.status_code == 200
    assert values(html, "group-by")[:3] == ["p4999", "p0007", "p0000"]
    assert chosen(html, "group-by") == ["p4999", "p0007"]
    assert len(values(html, "group-by")) == 51  # the two chosen and 49 others (p0007 is one of the 50)
    assert chosen(html, "group-metric") == ["m4321"] and len(values(html, "group-metric")) == 52
    assert "and 4,949 more params" in html and "and 4,949 more metrics" in html
    assert html.count("<option") == 3 + 51 + 52
    assert '<th scope="col" class="num metric">m4321 mean</th>' in html


def test_find_group_without_javascript_lists_the_matches_and_opens_the_picker(viewer_client, wide):
    html = viewer_client.get(table_url(wide), {"find_group": "P09"}).content.decode()
    assert '<details class="group-picker" id="group-picker" open>' in html
    assert 'name="find_group" id="group-find" value="P09"' in html
    assert values(html, "group-by") == [hp(i) for i in range(90, 100)]
    assert values(html, "group-metric") == [""]  # no metric holds "p09"
    assert chosen(html, "group-by") == [] and 'id="group-by-more" hidden>' in html
    assert 'id="group-find-status" role="status"></span>' in html  # no notes: everything matching is listed
    assert re.search(r'id="column-find" value=""', html)  # the Columns picker is not searched


def test_a_group_search_that_matches_more_than_a_select_lists_says_how_many_more(viewer_client, wide):
    html = viewer_client.get(table_url(wide), {"find_group": "grad"}).content.decode()
    assert values(html, "group-metric") == ["", *(layer(i) for i in range(PICKER_KEYS_SHOWN))]
    assert 'id="group-metric-more">and 70 more matching — type more to narrow them</p>' in html
    assert values(html, "group-by") == []
    nothing = viewer_client.get(table_url(wide), {"find_group": "no such key"}).content.decode()
    assert "No param or metric matches “no such key”." in nothing
    assert values(nothing, "group-by") == [] and values(nothing, "group-metric") == [""]


def test_the_chosen_grouping_survives_a_search_and_a_found_param_joins_it(viewer_client, wide):
    """What the browser sends when a found param is picked and Group pressed: the chosen options
    are still in the selects, first, so the earlier choice comes along."""
    searched = viewer_client.get(
        table_url(wide), {"group_by": hp(3), "group_metric": layer(100), "find_group": "p09"}
    ).content.decode()
    assert values(searched, "group-by") == [hp(3), *(hp(i) for i in range(90, 100))]
    assert chosen(searched, "group-by") == [hp(3)]
    assert values(searched, "group-metric") == ["", layer(100)]  # chosen, though it does not match
    assert chosen(searched, "group-metric") == [layer(100)]
    assert "No param or metric matches" not in searched  # the chosen ones are not matches, the params are

    response = viewer_client.get(
        table_url(wide), {"group_by": [hp(3), hp(97)], "group_metric": layer(117), "find_group": "p09"}
    )
    html = response.content.decode()
    assert chosen(html, "group-by") == [hp(3), hp(97)]
    assert chosen(html, "group-metric") == [layer(117)]
    head = html.split('<table class="data-table group-table">')[1].split("</thead>")[0]
    assert re.findall(r"<th [^>]*>([^<]+)</th>", head) == [
        hp(3),
        hp(97),
        "Runs",
        f"{layer(117)} mean",
        "min",
        "max",
    ]
    groups = [(g.values, g.count, g.mean) for g in response.context["groups"].groups]
    assert groups == [(("a", "a"), 2, 0.5), (("b", "b"), 1, 2.0)]


def test_a_form_error_elsewhere_keeps_the_grouping_in_the_picker(viewer_client, wide):
    response = viewer_client.get(
        table_url(wide), {"group_by": [hp(5), "not logged"], "group_metric": layer(9), "selected": "nope"}
    )
    assert response.status_code == 400  # the bad selection is named; the picker still holds the choice
    html = response.content.decode()
    assert chosen(html, "group-by") == [hp(5), "not logged"]
    assert chosen(html, "group-metric") == [layer(9)]


def test_hostile_text_in_the_group_search_and_the_grouping_is_escaped(viewer_client, wide):
    response = viewer_client.get(
        table_url(wide), {"find_group": HOSTILE, "group_by": HOSTILE, "group_metric": HOSTILE}
    )
    html = response.content.decode()
    assert HOSTILE not in html
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    picker = group_picker_html(html)
    assert f'id="group-find" value="{escaped}"' in picker
    assert chosen(html, "group-by") == [HOSTILE] and chosen(html, "group-metric") == [HOSTILE]
    assert f'<option value="{escaped}" selected>{escaped}</option>' in picker
    # The dataset of that name is not a param or a metric: the Group picker does not find it.
    assert values(html, "group-by") == [HOSTILE] and values(html, "group-metric") == ["", HOSTILE]


def test_the_columns_endpoint_answers_only_the_kinds_asked_for(
    viewer_client, wide, django_assert_max_num_queries
):
    url = reverse("dashboard:run-columns")
    viewer_client.get(url, {"experiments": [wide.pk]})  # warm the session
    # session, user, role, experiment, permissions, the counts, the params' keys, the metrics' keys
    with django_assert_max_num_queries(8):
        response = viewer_client.get(url, {"experiments": [wide.pk], "kind": ["param", "metric"], "q": "1"})
    answer = response.json()
    assert set(answer["kinds"]) == {"param", "metric"}
    assert answer["kinds"]["param"] == {"keys": [hp(i) for i in range(100) if "1" in str(i)], "total": 19}
    assert answer["kinds"]["metric"]["total"] == 39 and len(answer["kinds"]["metric"]["keys"]) == 39
    hostile = viewer_client.get(url, {"experiments": [wide.pk], "kind": ["param", "metric"], "q": "<script"})
    assert hostile.json()["kinds"] == {"param": {"keys": [], "total": 0}, "metric": {"keys": [], "total": 0}}
    bad = viewer_client.get(url, {"experiments": [wide.pk], "kind": ["param", "runs"], "q": "x"})
    assert (bad.status_code, bad.json()["message"]) == (
        400,
        "kind: 'runs' is not one of metric, param, tag, dataset",
    )


def test_a_saved_view_leaves_out_the_group_search(client, contributor, wide):
    client.force_login(contributor)
    query = f"group_by={hp(1)}&find_group=p11&find_column=layer"
    client.post(reverse("dashboard:saved-view-save", args=[wide.pk]), {"name": "v", "query": query})
    assert SavedView.objects.get().query == "group_by=hp001%2Flr"


def test_the_group_picker_lists_the_chosen_keys_first_and_a_bounded_few_others():
    keys = KeySets(metrics=[f"m{i:03d}" for i in range(200)], params=["alpha", "beta", "gamma"])
    picker = group_picker(
        key_sets=keys, group_by=["gamma"], metric="m150", search="", matches=None, url="/x", limit=2
    )
    assert [(o.key, o.chosen) for o in picker.by.options] == [
        ("gamma", True),
        ("alpha", False),
        ("beta", False),
    ]
    assert (picker.by.more, picker.by.more_text) == (0, "")
    assert [o.key for o in picker.metric.options] == ["m150", "m000", "m001"]
    assert picker.metric.more_text == "and 197 more metrics — type to find them"
    assert (
        picker.truncated_note
        == "Each list shows its first 2 keys and the chosen ones: type to find the others."
    )
    found = {"param": KeyMatches(), "metric": KeyMatches(keys=["m010", "m100"], total=11)}
    searched = group_picker(
        key_sets=keys,
        group_by=["gamma", "gone"],
        metric="m150",
        search="10",
        matches=found,
        url="/x",
        limit=2,
    )
    assert [(o.key, o.chosen, o.matching) for o in searched.by.options] == [
        ("gamma", True, False),
        ("gone", True, False),
    ]
    assert [(o.key, o.matching) for o in searched.metric.options] == [
        ("m150", False),
        ("m010", True),
        ("m100", True),
    ]
    assert searched.metric.more_text == "and 9 more matching — type more to narrow them"
    assert (searched.truncated_note, searched.nothing_found) == ("", False)
