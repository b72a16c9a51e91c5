"""runs/search as the mlflow client calls it: filters, order_by with MLflow's semantics, page
tokens, view types, errors that name the problem, and a fixed number of queries per page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from config.inputs import TagInput
from tracker.models import Experiment, LoggedModel
from tracker.services import DatasetSpec, MetricInput, ParamInput, log_batch, log_inputs, start_run

pytestmark = pytest.mark.django_db

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
T0 = 1_700_000_000_000


def search(wire, experiment_ids: list, **message) -> dict:
    return wire.ok("POST", "runs/search", {"experiment_ids": [str(i) for i in experiment_ids], **message})


def run_names(response: dict) -> list[str]:
    return [run["info"]["run_name"] for run in response.get("runs", [])]


def make_run(actor, experiment, name: str, *, minute: int, acc=None, lr=None, team=None):
    run = start_run(
        actor=actor,
        experiment=experiment,
        name=name,
        start_time=EPOCH + timedelta(milliseconds=T0, minutes=minute),
    )
    metrics = [MetricInput("acc", acc, 0, T0)] if acc is not None else []
    params = [ParamInput("lr", lr)] if lr is not None else []
    tags = [TagInput("team", team)] if team is not None else []
    if metrics or params or tags:
        log_batch(actor=actor, run=run, metrics=metrics, params=params, tags=tags)
    return run


@pytest.fixture
def sweep(contributor):
    """Six runs started a minute apart: accuracies with a NaN and a missing one, two learning rates."""
    experiment = Experiment.objects.create(name="sweep")
    accuracies = {"r0": 0.5, "r1": 0.9, "r2": float("nan"), "r3": None, "r4": 0.7, "r5": 0.1}
    for minute, (name, acc) in enumerate(accuracies.items()):
        make_run(
            contributor,
            experiment,
            name,
            minute=minute,
            acc=acc,
            lr="0.01" if minute % 2 else "0.1",
            team="vision" if minute < 3 else None,
        )
    return experiment


def test_search_returns_full_runs_newest_first_by_default(wire, sweep):
    shown = search(wire, [sweep.pk])
    assert run_names(shown) == ["r5", "r4", "r3", "r2", "r1", "r0"]
    assert "next_page_token" not in shown
    first = shown["runs"][0]
    assert set(first) == {"info", "data", "inputs", "outputs"}
    assert first["info"]["experiment_id"] == str(sweep.pk)
    assert first["data"]["metrics"] == [{"key": "acc", "value": 0.1, "timestamp": T0, "step": 0}]
    assert first["data"]["params"] == [{"key": "lr", "value": "0.01"}]
    nan_run = shown["runs"][3]
    assert nan_run["data"]["metrics"][0]["value"] == "NaN"


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("metrics.acc > 0.4", ["r4", "r1", "r0"]),
        ("metrics.acc > 0.4 and params.lr = '0.01'", ["r1"]),
        ("params.lr = '0.1' AND tags.team = 'vision'", ["r2", "r0"]),
        ("tags.team IS NULL", ["r5", "r4", "r3"]),
        ("attributes.run_name LIKE 'r%' AND metrics.acc != 0.5", ["r5", "r4", "r2", "r1"]),
        ("run_name IN ('r1', 'r2')", ["r2", "r1"]),
        ("metrics.acc < 0.2 OR tags.team = 'vision'", ["r5", "r2", "r1", "r0"]),
        ("NOT (tags.team = 'vision')", ["r5", "r4", "r3"]),
        (f"attributes.start_time >= {T0 + 4 * 60_000}", ["r5", "r4"]),
        ("tags.`mlflow.runName` = 'r3'", []),  # set by the MLflow API only, not by start_run here
    ],
)
def test_filters_use_mlflows_grammar_plus_or_and_not(wire, sweep, filter_string, expected):
    assert run_names(search(wire, [sweep.pk], filter=filter_string)) == expected


def test_order_by_metric_puts_missing_values_last_in_both_directions(wire, sweep):
    descending = run_names(search(wire, [sweep.pk], order_by=["metrics.acc DESC"]))
    ascending = run_names(search(wire, [sweep.pk], order_by=["metrics.acc ASC"]))
    assert descending[:4] == ["r1", "r4", "r0", "r5"]
    assert ascending[:4] == ["r5", "r0", "r4", "r1"]
    # A NaN latest value and a metric never logged both sort after every number.
    assert set(descending[4:]) == set(ascending[4:]) == {"r2", "r3"}


def test_pages_follow_tokens_until_exhausted_in_the_requested_order(wire, sweep):
    seen, token, pages = [], None, 0
    while True:
        message = {"order_by": ["params.lr ASC", "attributes.run_name DESC"], "max_results": 2}
        page = search(wire, [sweep.pk], **message, **({"page_token": token} if token else {}))
        pages += 1
        seen.extend(run_names(page))
        token = page.get("next_page_token")
        if not token:
            break
    assert seen == ["r5", "r3", "r1", "r4", "r2", "r0"]
    assert pages == 3


def test_run_view_type_shows_deleted_runs_on_request(wire, sweep):
    doomed = search(wire, [sweep.pk], filter="run_name = 'r0'")["runs"][0]["info"]["run_id"]
    wire.ok("POST", "runs/delete", {"run_id": doomed})
    assert "r0" not in run_names(search(wire, [sweep.pk]))
    assert run_names(search(wire, [sweep.pk], run_view_type="DELETED_ONLY")) == ["r0"]
    assert len(run_names(search(wire, [sweep.pk], run_view_type="ALL"))) == 6


def test_search_spans_several_experiments_and_an_empty_list_finds_nothing(wire, sweep, contributor):
    other = Experiment.objects.create(name="other")
    make_run(contributor, other, "elsewhere", minute=99)
    assert run_names(search(wire, [sweep.pk, other.pk], max_results=1)) == ["elsewhere"]
    assert wire.ok("POST", "runs/search", {}) == {}


@pytest.mark.parametrize(
    ("message", "words"),
    [
        ({"max_results": 50001}, "max_results"),
        ({"max_results": 0}, "max_results"),
        ({"filter": "metrics.acc > 0.5 and"}, "position 21"),
        ({"filter": "metrics.acc = 'high'"}, "Expected numeric value"),
        ({"filter": "tags.team = 1"}, "Expected a quoted string value"),
        ({"filter": "colour = 'red'"}, "Invalid attribute key 'colour'"),
        ({"filter": "params.lr = 'unterminated"}, "unterminated string"),
        ({"order_by": ["metrics.acc DESC", "metrics.acc"]}, "Duplicate"),
        ({"order_by": ["metrics.acc sideways"]}, "order_by[0]"),
        ({"page_token": "not-a-token"}, "page_token"),
        ({"run_view_type": "EVERYTHING"}, "run_view_type"),
    ],
)
def test_bad_searches_are_400_naming_the_problem(wire, sweep, message, words):
    text = wire.error(
        "POST",
        "runs/search",
        {"experiment_ids": [str(sweep.pk)], **message},
        status=400,
        code="INVALID_PARAMETER_VALUE",
    )
    assert words in text


@pytest.mark.parametrize(
    ("experiment_ids", "status", "code"),
    [
        ([5], 400, "INVALID_PARAMETER_VALUE"),
        (["abc"], 400, "INVALID_PARAMETER_VALUE"),
        (["987654"], 404, "RESOURCE_DOES_NOT_EXIST"),
    ],
)
def test_bad_experiment_ids(wire, experiment_ids, status, code):
    text = wire.error("POST", "runs/search", {"experiment_ids": experiment_ids}, status=status, code=code)
    assert "experiment_id" in text


@pytest.mark.parametrize(
    "other_order",
    [["metrics.acc"], ["metrics.loss DESC"], ["attributes.end_time DESC"], ["params.lr DESC"], []],
    ids=["ascending", "another-metric", "an-attribute", "a-param", "default"],
)
def test_a_page_token_made_for_another_order_is_refused(wire, sweep, other_order):
    """A token's values would fit several sorts (a number, a time, an id); read against another
    sort they would skip runs without a word, so the token names its own."""
    token = search(wire, [sweep.pk], order_by=["metrics.acc DESC"], max_results=1)["next_page_token"]
    text = wire.error(
        "POST",
        "runs/search",
        {"experiment_ids": [str(sweep.pk)], "order_by": other_order, "page_token": token},
        status=400,
        code="INVALID_PARAMETER_VALUE",
    )
    assert text == "page_token: Invalid page token"


def test_the_page_query_joins_no_parent_run_or_experiment(wire, contributor, experiment):
    """The MLflow run message shows neither, so the search leaves their joins out: a filtered
    search plans in half the time without them. The run table's search keeps them."""
    make_run(contributor, experiment, "only", minute=0, acc=0.5, lr="1", team="a")
    with CaptureQueriesContext(connection) as queries:
        search(wire, [experiment.pk], filter="metrics.acc >= 0", order_by=["metrics.acc DESC"])
    (page,) = [query["sql"] for query in queries.captured_queries if "search_sort_0" in (query["sql"] or "")]
    assert "JOIN auth_user" in page.replace('"', "")  # the run's user, whom the message names
    assert "JOIN tracker_experiment" not in page.replace('"', "")
    assert "tracker_run T" not in page.replace('"', "")  # no second tracker_run: the parent


def _queries_for(wire, experiment) -> int:
    with CaptureQueriesContext(connection) as queries:
        shown = search(wire, [experiment.pk], filter="metrics.acc >= 0", order_by=["metrics.acc DESC"])
    assert shown["runs"]
    return len(queries)


def test_a_page_costs_the_same_queries_for_one_run_as_for_fifty(wire, contributor):
    single, many = Experiment.objects.create(name="single"), Experiment.objects.create(name="many")
    make_run(contributor, single, "only", minute=0, acc=0.5, lr="1", team="a")
    for index in range(50):
        run = make_run(
            contributor, many, f"run-{index}", minute=index, acc=index / 50, lr=str(index), team="a"
        )
        log_inputs(
            actor=contributor, run=run, datasets=[DatasetSpec("digits", f"{index:064x}", context="training")]
        )
    model = LoggedModel.objects.create(experiment=many, name="m")
    wire.ok("POST", "runs/outputs", {"run_id": run.uuid, "models": [{"model_id": model.model_id, "step": 1}]})
    # The token's user, the experiment with the user's grant on it, the page, then params, tags,
    # metrics, datasets and model links: none per run, and none for the dashboard's column keys.
    assert _queries_for(wire, single) == _queries_for(wire, many) == 8
    newest = search(wire, [many.pk], max_results=1)["runs"][0]
    assert newest["outputs"] == {"model_outputs": [{"model_id": model.model_id, "step": 1}]}
    assert newest["inputs"]["dataset_inputs"][0]["tags"] == [
        {"key": "mlflow.data.context", "value": "training"}
    ]


def test_max_results_over_the_limit_is_mlflows_invalid_value(wire, experiment):
    message = wire.error(
        "POST",
        "runs/search",
        {"experiment_ids": [str(experiment.pk)], "max_results": 123456789},
        status=400,
        code="INVALID_PARAMETER_VALUE",
    )
    assert message == (
        "Invalid value 123456789 for parameter 'max_results' supplied:  Hint: Value was of type 'int'. "
        "See the API docs for more information about request parameters."
    )
