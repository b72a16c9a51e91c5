"""Per-experiment key sets: kept on every write path, so the run table never scans runs for columns."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.permissions import SYSTEM_READER
from config.inputs import TagInput
from tests.mlflow.conftest import MlflowWire
from tracker.selectors import experiment_key_sets, search_runs
from tracker.services import (
    DatasetSpec,
    MetricInput,
    ParamInput,
    create_experiment,
    log_batch,
    log_inputs,
    start_run,
)

pytestmark = pytest.mark.django_db


def keys_of(experiment) -> dict[str, list[str]]:
    found = experiment_key_sets(experiment_ids=[experiment.pk])
    return {"param": found.params, "metric": found.metrics, "tag": found.tags, "dataset": found.datasets}


def test_services_add_param_metric_tag_and_dataset_names_to_the_experiments_key_set(contributor):
    experiment = create_experiment(actor=contributor, name="keys")
    other = create_experiment(actor=contributor, name="elsewhere")
    run = start_run(actor=contributor, experiment=experiment, name="r", tags=[TagInput("team", "nlp")])
    log_batch(
        actor=contributor,
        run=run,
        params=[ParamInput("lr", "0.1")],
        metrics=[MetricInput("val loss", 0.5), MetricInput("acc", 0.9)],
        tags=[TagInput("note", "x")],
    )
    log_inputs(actor=contributor, run=run, datasets=[DatasetSpec("digits", "a" * 64, "2.1")])
    log_batch(actor=contributor, run=run, metrics=[MetricInput("acc", 0.95, 1)])  # known keys: nothing new

    assert keys_of(experiment) == {
        "param": ["lr"],
        "metric": ["acc", "val loss"],
        "tag": ["note", "team"],
        "dataset": ["digits"],
    }
    assert keys_of(other) == {"param": [], "metric": [], "tag": [], "dataset": []}


def test_wide_batches_and_awkward_dataset_names_reach_the_key_set_intact(contributor):
    """Names travel to PostgreSQL as one text array: every one of a wide batch's keys, and
    dataset names (free text) with separators, quotes, braces or the word NULL, come back as sent."""
    experiment = create_experiment(actor=contributor, name="wide")
    run = start_run(actor=contributor, experiment=experiment, name="r")
    names = ["NULL", "  spaced  ", "ünïcode", "with:colon"] + [f"layer_{i:03d}/grad_norm" for i in range(120)]
    result = log_batch(
        actor=contributor,
        run=run,
        metrics=[MetricInput(name, float(i)) for i, name in enumerate(names)],
        params=[ParamInput(name, "1") for name in names[:4]],
    )
    datasets = ["a,b", 'say "hi"', "{braces}", "back\\slash", "NULL", "(x, y)"]
    log_inputs(actor=contributor, run=run, datasets=[DatasetSpec(name, "a" * 64, "1") for name in datasets])

    assert sorted(result.metric_keys) == sorted(names)
    assert keys_of(experiment)["metric"] == sorted(names)
    assert keys_of(experiment)["param"] == sorted(names[:4])
    assert keys_of(experiment)["dataset"] == sorted(datasets)
    summaries = dict(run.metric_summaries.values_list("key__name", "last_value"))
    assert summaries == {name: float(i) for i, name in enumerate(names)}


def test_the_native_api_log_batch_adds_its_keys(api_client_for, contributor, experiment):
    run = start_run(actor=contributor, experiment=experiment, name="api")
    response = api_client_for(contributor).post(
        f"/api/v1/runs/{run.uuid}/log-batch",
        {
            "metrics": [{"key": "train/loss", "value": 1.5, "step": 0}],
            "params": [{"key": "batch_size", "value": "32"}],
            "tags": [{"key": "stage", "value": "dev"}],
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    assert keys_of(experiment) == {
        "param": ["batch_size"],
        "metric": ["train/loss"],
        "tag": ["stage"],
        "dataset": [],
    }


def test_the_mlflow_api_adds_keys_from_create_log_batch_and_log_inputs(
    mlflow_wire_for, contributor, experiment
):
    wire = mlflow_wire_for(contributor)
    run_id = wire.ok(
        "POST",
        "runs/create",
        {"experiment_id": str(experiment.pk), "tags": [{"key": "mlflow.user", "value": "carl"}]},
    )["run"]["info"]["run_id"]
    wire.ok(
        "POST",
        "runs/log-batch",
        {
            "run_id": run_id,
            "metrics": [{"key": "f1", "value": 0.8, "timestamp": 1, "step": 3}],
            "params": [{"key": "depth", "value": "6"}],
        },
    )
    dataset = {"name": "iris", "digest": "abc123", "source_type": "local", "source": "{}"}
    wire.ok("POST", "runs/log-inputs", {"run_id": run_id, "datasets": [{"dataset": dataset}]})
    keys = keys_of(experiment)
    assert keys["param"] == ["depth"]
    assert keys["metric"] == ["f1"]
    assert "mlflow.user" in keys["tag"]
    assert keys["dataset"] == ["iris"]


@pytest.fixture
def mlflow_wire_for(db):
    from accounts.services import create_api_token

    def make(user) -> MlflowWire:
        _, raw = create_api_token(user=user, name="mlflow-test")
        return MlflowWire(raw)

    return make


def test_a_run_table_page_finds_its_columns_without_scanning_the_runs(contributor, experiment):
    run = start_run(actor=contributor, experiment=experiment, name="r")
    log_batch(actor=contributor, run=run, params=[ParamInput("lr", "0.1")], metrics=[MetricInput("acc", 0.9)])
    with CaptureQueriesContext(connection) as queries:
        page = search_runs(user=SYSTEM_READER, experiment_ids=[experiment.pk])
    assert (page.param_keys, page.metric_keys) == (["lr"], ["acc"])
    sql = [query["sql"].upper() for query in queries.captured_queries]
    assert not any("DISTINCT" in statement for statement in sql)
    assert sum("TRACKER_EXPERIMENTKEY" in statement for statement in sql) == 1
