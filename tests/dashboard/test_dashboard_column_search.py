"""The run table's Columns picker stays small however many keys the runs logged, and finds the
others by name: on the server (`find_column`, without JavaScript) and through runs/columns.json."""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import unescape

import pytest
from django.urls import reverse

from accounts.permissions import Level
from accounts.roles import Role
from accounts.services import assign_role
from dashboard.column_picker import PICKER_KEYS_SHOWN, column_picker
from dashboard.tables import choose_columns
from tests.factories import UserFactory
from tracker.permissions import set_experiment_permission
from tracker.selectors import KeyMatches, KeySets
from tracker.services import DatasetSpec

from .conftest import HOSTILE

pytestmark = pytest.mark.django_db

CHOICE = re.compile(
    r'<label class="column-choice (?P<kind>\w+)"(?P<hidden> hidden)?>'
    r'<input type="checkbox" name="columns" value="(?P<value>[^"]*)"(?P<checked> checked)?>'
)


@dataclass(frozen=True)
class Box:
    value: str
    checked: bool
    hidden: bool


def boxes(html: str) -> list[Box]:
    """The picker's checkboxes, in page order."""
    picker = html.split('<details class="column-picker"')[1].split("</details>")[0]
    return [Box(unescape(m["value"]), bool(m["checked"]), bool(m["hidden"])) for m in CHOICE.finditer(picker)]


def table_url(experiment) -> str:
    return reverse("dashboard:run-table", args=[experiment.pk])


def layer(index: int) -> str:
    return f"layer{index:04d}/grad_norm"


@pytest.fixture
def wide(make_experiment, make_run):
    """One run of 120 metrics, two params and a dataset of a hostile name (keys may not hold `<`)."""
    experiment = make_experiment("wide")
    metrics: dict[str, float | list[float]] = {layer(i): 1.0 for i in range(120)}
    datasets = [DatasetSpec(HOSTILE, "0" * 64, "1")]
    make_run(experiment, "r1", metrics=metrics, params={"lr": "0.1", "Loss_fn": "ce"}, datasets=datasets)
    return experiment


def test_a_run_of_five_thousand_metrics_gets_a_picker_of_a_bounded_few(
    viewer_client, make_experiment, make_run
):
    experiment = make_experiment("huge")
    make_run(experiment, "r1", metrics={layer(i): float(i) for i in range(5000)}, params={"lr": "0.1"})
    response = viewer_client.get(table_url(experiment))
    html = response.content.decode()
    assert response.status_code == 200
    found = boxes(html)
    per_kind = {kind: [b for b in found if b.value.startswith(kind + ":")] for kind in ("metric", "param")}
    # The 30 metrics the table shows by default are among the first 50 listed; min and max likewise.
    assert [b.value for b in per_kind["metric"]] == [f"metric:{layer(i)}" for i in range(PICKER_KEYS_SHOWN)]
    assert sum(b.checked for b in per_kind["metric"]) == 30
    assert len(found) == 7 + 3 * PICKER_KEYS_SHOWN + 1  # attributes, metrics three ways, the param
    picker = html.split('<details class="column-picker"')[1].split("</details>")[0]
    assert picker.count("and 4,950 more metrics — type to find them") == 3  # the Group picker says it too
    assert "Each list shows its first 50 keys and the chosen ones: type to find the others." in html
    assert 'id="column-find"' in html and '<details class="column-picker" id="column-picker">' in html


def test_find_column_without_javascript_lists_the_matches_and_opens_the_picker(viewer_client, wide):
    html = viewer_client.get(table_url(wide), {"find_column": "LAYER011"}).content.decode()
    assert '<details class="column-picker" id="column-picker" open>' in html
    assert 'value="LAYER011"' in html
    visible = [b.value for b in boxes(html) if not b.hidden]
    tens = [layer(i) for i in range(110, 120)]
    assert visible == [f"{kind}:{key}" for kind in ("metric", "metric_min", "metric_max") for key in tens]
    # The default columns (four attributes, the first 30 metrics, the params and the dataset) stay
    # chosen, out of sight.
    hidden = [b for b in boxes(html) if b.hidden]
    assert all(b.checked for b in hidden if not b.value.startswith("attr:"))
    assert sum(b.checked for b in hidden) == 4 + 30 + 2 + 1
    assert "37 chosen columns not matching stay chosen." in html


def test_a_search_that_matches_more_than_the_picker_lists_says_how_many_more(viewer_client, wide):
    html = viewer_client.get(table_url(wide), {"find_column": "grad"}).content.decode()
    listed = [b for b in boxes(html) if b.value.startswith("metric:") and not b.hidden]
    assert len(listed) == PICKER_KEYS_SHOWN
    assert html.count("and 70 more matching — type more to narrow them") == 3


def test_a_search_finds_params_by_substring_in_any_case(viewer_client, wide):
    html = viewer_client.get(table_url(wide), {"find_column": "loss"}).content.decode()
    assert [b.value for b in boxes(html) if not b.hidden] == ["param:Loss_fn"]
    nothing = viewer_client.get(table_url(wide), {"find_column": "no such column"}).content.decode()
    assert "No column matches “no such column”." in nothing
    assert not [b for b in boxes(nothing) if not b.hidden]


def test_a_found_column_is_shown_and_the_chosen_ones_survive_the_search(viewer_client, wide):
    """What the browser sends when a found box is checked and "Show these columns" pressed: the
    boxes out of sight are still in the form, so the earlier choice comes along."""
    chosen = ["attr:status", f"metric:{layer(3)}", "param:lr"]
    searched = viewer_client.get(
        table_url(wide), {"columns_set": "1", "columns": chosen, "find_column": layer(117)}
    ).content.decode()
    sent = [b.value for b in boxes(searched) if b.checked]
    assert sorted(sent) == sorted(chosen)  # each in the form, out of sight
    assert all(b.hidden for b in boxes(searched) if b.checked)
    response = viewer_client.get(
        table_url(wide),
        {"columns_set": "1", "columns": [*sent, f"metric:{layer(117)}"], "find_column": layer(117)},
    )
    head = response.content.decode().split("<table")[1].split("</thead>")[0]
    assert f">{layer(117)}<" in head and f">{layer(3)}<" in head and ">lr<" in head and ">Status<" in head
    assert [b.value for b in boxes(response.content.decode()) if b.checked and not b.hidden] == [
        f"metric:{layer(117)}"
    ]


def test_a_constant_column_hidden_by_the_switch_stays_chosen_in_the_picker(
    viewer_client, make_experiment, make_run
):
    """Unchecked, the hidden column would have been dropped by the next press of "Show these columns"."""
    experiment = make_experiment("seeds")
    make_run(experiment, "a", params={"seed": "7", "lr": "0.1"})
    make_run(experiment, "b", params={"seed": "7", "lr": "0.2"}, minutes=1)
    response = viewer_client.get(table_url(experiment), {"hide_constant": "on"})
    assert response.context["hidden_constant"] == ["param:seed"]
    assert Box("param:seed", checked=True, hidden=False) in boxes(response.content.decode())


def test_hostile_key_names_are_text_in_the_picker_and_the_search(viewer_client, wide):
    listed = viewer_client.get(table_url(wide)).content.decode()
    assert HOSTILE not in listed
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in listed.split('<details class="column-picker"')[1]
    found = viewer_client.get(table_url(wide), {"find_column": "<script"}).content.decode()
    assert HOSTILE not in found
    assert [b.value for b in boxes(found) if not b.hidden] == [f"dataset:{HOSTILE}"]
    assert 'value="&lt;script"' in found


def test_the_columns_endpoint_answers_a_bounded_few_keys_per_kind(
    viewer_client, wide, django_assert_max_num_queries
):
    url = reverse("dashboard:run-columns")
    viewer_client.get(url, {"experiments": [wide.pk]})  # warm the session
    # session, user, role, experiment, permissions, the counts, the metrics' keys
    with django_assert_max_num_queries(7):
        response = viewer_client.get(url, {"experiments": [wide.pk], "q": "GRAD"})
    assert response.status_code == 200
    answer = response.json()
    assert answer["q"] == "GRAD" and answer["limit"] == PICKER_KEYS_SHOWN
    assert answer["kinds"]["metric"] == {"keys": [layer(i) for i in range(50)], "total": 120}
    assert answer["kinds"]["param"] == {"keys": [], "total": 0}
    hostile = viewer_client.get(url, {"experiments": [wide.pk], "q": "<SCRIPT>"}).json()
    assert hostile["kinds"]["dataset"] == {"keys": [HOSTILE], "total": 1}  # the script makes text nodes of it
    assert viewer_client.get(url, {"experiments": [wide.pk]}).json()["kinds"]["param"] == {
        "keys": ["Loss_fn", "lr"],
        "total": 2,
    }


def test_the_columns_endpoint_names_a_bad_request(viewer_client, wide):
    url = reverse("dashboard:run-columns")
    missing = viewer_client.get(url, {"q": "x"})
    assert (missing.status_code, missing.json()) == (
        400,
        {"error_code": "INVALID_PARAMETER_VALUE", "message": "experiments: choose at least one experiment",
         "field": "experiments"},
    )  # fmt: skip
    unknown = viewer_client.get(url, {"experiments": [wide.pk + 1000], "q": "x"})
    assert unknown.status_code == 404
    assert unknown.json()["message"] == f"experiment_id: experiment {wide.pk + 1000} does not exist"
    long = viewer_client.get(url, {"experiments": [wide.pk], "q": "x" * 501})
    assert long.status_code == 400
    assert long.json()["message"] == "q: Ensure this value has at most 500 characters (it has 501)."


def test_a_user_who_may_not_read_the_experiment_gets_no_keys(client, wide, contributor, settings):
    settings.DEFAULT_PERMISSION = "NO_PERMISSIONS"
    stranger = UserFactory(username="stranger")
    assign_role(user=stranger, role=Role.VIEWER)
    client.force_login(stranger)
    url = reverse("dashboard:run-columns")
    refused = client.get(url, {"experiments": [wide.pk], "q": "layer"})
    assert refused.status_code == 403 and refused.json()["error_code"] == "PERMISSION_DENIED"
    assert "grad_norm" not in refused.content.decode()
    assert client.get(table_url(wide), {"find_column": "layer"}).status_code == 403
    set_experiment_permission(actor=contributor, experiment=wide, grantee=stranger, level=Level.READ)
    assert client.get(url, {"experiments": [wide.pk], "q": "layer"}).json()["kinds"]["metric"]["total"] == 120


def test_the_picker_lists_the_first_keys_and_every_chosen_one():
    keys = KeySets(metrics=[f"m{i:03d}" for i in range(200)], params=["lr"])
    choices = choose_columns(key_sets=keys, chosen=["metric:m150", "param:lr"])
    picker = column_picker(choices=choices, search="", matches=None, url="/x", limit=5)
    metric = next(group for group in picker.groups if group.kind == "metric")
    assert [e.choice.key for e in metric.entries] == ["m000", "m001", "m002", "m003", "m004", "m150"]
    assert (metric.more, metric.more_text) == (194, "and 194 more metrics — type to find them")
    found = {"metric": KeyMatches(keys=["m010", "m100"], total=11), "param": KeyMatches()}
    searched = column_picker(choices=choices, search="10", matches=found, url="/x", limit=2)
    metric = next(group for group in searched.groups if group.kind == "metric")
    entries = [(e.choice.key, e.hidden) for e in metric.entries]
    assert entries == [("m010", False), ("m100", False), ("m150", True)]
    assert metric.more_text == "and 9 more matching — type more to narrow them"
    assert searched.chosen_out_of_sight == 2  # m150 and lr
    assert next(group for group in searched.groups if group.kind == "param").empty
