"""Unmodified mlflow client code logging runs to Lab Ledger: what a training script does."""

from __future__ import annotations

import math

import mlflow
import pandas as pd
import pytest
from mlflow.entities import Metric, Param, RunTag, ViewType
from mlflow.exceptions import MlflowException

from tracker.models import MetricPoint, Run

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_training_script_logs_params_metrics_and_tags(client, contributor):
    experiment = mlflow.set_experiment("spiral-mlflow")
    with mlflow.start_run(run_name="lr-0.01") as active:
        mlflow.log_param("lr", 0.01)
        mlflow.log_params({"epochs": 20, "optimizer": "adam"})
        mlflow.log_metric("loss", 0.9)  # no step: MLflow logs step 0
        for step, loss in enumerate([0.7, 0.5, 0.3], start=1):
            mlflow.log_metric("loss", loss, step=step)
        mlflow.log_metrics({"val_acc": 0.81, "val_f1": float("nan")}, step=3)
        mlflow.set_tag("team", "vision")
        mlflow.set_tags({"note": "first try", "doomed": "yes"})
        mlflow.delete_tag("doomed")
    run_id = active.info.run_id

    fetched = client.get_run(run_id)
    assert fetched.info.experiment_id == experiment.experiment_id
    assert fetched.info.run_name == "lr-0.01"
    assert fetched.info.status == "FINISHED"
    assert fetched.info.end_time >= fetched.info.start_time
    assert fetched.info.user_id == contributor.username
    assert fetched.info.artifact_uri == f"mlflow-artifacts:/{experiment.experiment_id}/{run_id}/artifacts"
    assert fetched.data.params == {"lr": "0.01", "epochs": "20", "optimizer": "adam"}
    assert fetched.data.metrics["loss"] == 0.3
    assert fetched.data.metrics["val_acc"] == 0.81
    assert math.isnan(fetched.data.metrics["val_f1"])
    assert fetched.data.tags["team"] == "vision"
    assert fetched.data.tags["note"] == "first try"
    assert "doomed" not in fetched.data.tags
    assert fetched.data.tags["mlflow.runName"] == "lr-0.01"
    assert [(m.step, m.value) for m in client.get_metric_history(run_id, "loss")] == [
        (0, 0.9),
        (1, 0.7),
        (2, 0.5),
        (3, 0.3),
    ]
    # Stored as the authenticated user, whatever the client claimed.
    assert Run.objects.get(uuid=run_id).user == contributor


def test_nested_runs_record_their_parent(client):
    mlflow.set_experiment("nested")
    with (
        mlflow.start_run(run_name="sweep") as parent,
        mlflow.start_run(run_name="trial-1", nested=True) as child,
    ):
        mlflow.log_metric("score", 1.0)
    child_run = client.get_run(child.info.run_id)
    assert child_run.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert Run.objects.get(uuid=child.info.run_id).parent.uuid == parent.info.run_id


def test_a_run_naming_a_parent_from_another_server_is_created_as_mlflow_does(client):
    experiment_id = client.create_experiment("foreign-parent")
    created = client.create_run(experiment_id, tags={"mlflow.parentRunId": "7"})
    assert client.get_run(created.info.run_id).data.tags["mlflow.parentRunId"] == "7"
    assert Run.objects.get(uuid=created.info.run_id).parent is None


def test_a_run_without_a_name_gets_a_generated_one(client):
    experiment_id = client.create_experiment("unnamed-runs")
    run = client.create_run(experiment_id)
    assert run.info.run_name
    assert client.get_run(run.info.run_id).data.tags["mlflow.runName"] == run.info.run_name


def test_start_run_without_an_experiment_uses_default(client):
    with mlflow.start_run() as active:
        pass
    assert active.info.experiment_id == "0"


def test_a_contributor_logs_to_default_when_others_only_read(client, contributor, settings):
    """Under MLflow's usual default (READ), a script that names no experiment still logs: the
    Default experiment is everyone's (DEFAULT_EXPERIMENT_PERMISSION=EDIT)."""
    settings.DEFAULT_PERMISSION = "READ"
    with mlflow.start_run() as active:
        mlflow.log_param("lr", "0.01")
        mlflow.log_metric("loss", 0.5, step=1)
    run = Run.objects.get(uuid=active.info.run_id)
    assert (run.experiment_id, run.user, run.params.get().value) == (0, contributor, "0.01")
    assert MetricPoint.objects.filter(run=run).count() == 1


def test_turning_the_open_default_off_refuses_a_contributors_run(client, settings):
    settings.DEFAULT_PERMISSION = "READ"
    settings.DEFAULT_EXPERIMENT_PERMISSION = "NO_PERMISSIONS"  # Default follows DEFAULT_PERMISSION
    with pytest.raises(MlflowException) as refused:
        mlflow.start_run()
    assert refused.value.error_code == "PERMISSION_DENIED"
    assert "Starting a run needs EDIT permission on experiment 0; you have READ." in refused.value.message


def test_a_viewer_still_cannot_log_to_default(mlflow_as, viewer, settings):
    settings.DEFAULT_PERMISSION = "READ"
    mlflow_as(viewer)
    with pytest.raises(MlflowException) as refused:
        mlflow.start_run()
    assert refused.value.error_code == "PERMISSION_DENIED"
    assert not Run.objects.exists()


def test_end_run_with_a_failed_status(client):
    mlflow.set_experiment("failures")
    mlflow.start_run(run_name="diverged")
    run_id = mlflow.active_run().info.run_id
    mlflow.end_run(status="FAILED")
    assert client.get_run(run_id).info.status == "FAILED"


def test_log_batch_of_2500_metrics_is_split_by_the_client_and_all_stored(client):
    experiment_id = client.create_experiment("big-batch")
    run_id = client.create_run(experiment_id).info.run_id
    metrics = [Metric("throughput", float(i), 1_700_000_000_000 + i, i) for i in range(2500)]
    params = [Param(f"p{i:03d}", str(i)) for i in range(150)]
    client.log_batch(run_id, metrics=metrics, params=params, tags=[RunTag("batch", "big")])
    stored = Run.objects.get(uuid=run_id)
    assert MetricPoint.objects.filter(run=stored).count() == 2500
    assert stored.params.count() == 150
    history = client.get_metric_history(run_id, "throughput")
    assert [m.value for m in history] == [float(i) for i in range(2500)]


def test_changing_a_param_is_refused_with_mlflows_error(client):
    experiment_id = client.create_experiment("immutable-params")
    run_id = client.create_run(experiment_id).info.run_id
    client.log_param(run_id, "lr", "0.1")
    with pytest.raises(MlflowException) as error:
        client.log_param(run_id, "lr", "0.2")
    assert error.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "0.1" in error.value.message and "0.2" in error.value.message


def test_log_input_records_a_dataset_built_from_a_dataframe(client):
    frame = pd.DataFrame({"x1": [0.1, 0.2, 0.3], "x2": [1.0, 0.0, 1.0], "label": [0, 1, 2]})
    dataset = mlflow.data.from_pandas(frame, source="s3://bucket/spiral.csv", name="spiral", targets="label")
    mlflow.set_experiment("datasets")
    with mlflow.start_run() as active:
        mlflow.log_input(dataset, context="training")
    inputs = client.get_run(active.info.run_id).inputs.dataset_inputs
    assert len(inputs) == 1
    assert inputs[0].dataset.name == "spiral"
    assert inputs[0].dataset.digest == dataset.digest
    assert inputs[0].dataset.source_type == "s3"
    assert {t.key: t.value for t in inputs[0].tags} == {"mlflow.data.context": "training"}
    found = client.search_runs(
        [active.info.experiment_id],
        filter_string="datasets.name = 'spiral' AND datasets.context = 'training'",
    )
    assert [r.info.run_id for r in found] == [active.info.run_id]


def test_search_runs_filters_orders_and_pages(client):
    experiment_id = client.create_experiment("search-me")
    accuracies = {}
    for index in range(12):
        run_id = client.create_run(experiment_id, run_name=f"trial-{index}").info.run_id
        lr = "0.01" if index % 2 else "0.1"
        client.log_batch(
            run_id,
            metrics=[Metric("val_acc", index / 20, 1_700_000_000_000, 0)],
            params=[Param("lr", lr)],
        )
        if lr == "0.01":
            accuracies[run_id] = index / 20
    seen, token = [], None
    while True:
        page = client.search_runs(
            [experiment_id],
            filter_string="params.lr = '0.01' and metrics.val_acc > 0.1",
            order_by=["metrics.val_acc DESC"],
            max_results=2,
            page_token=token,
        )
        seen.extend(run.info.run_id for run in page)
        token = page.token
        if not token:
            break
    matching = [run_id for run_id, accuracy in accuracies.items() if accuracy > 0.1]
    expected = sorted(matching, key=accuracies.get, reverse=True)
    assert seen == expected
    frame = mlflow.search_runs(
        experiment_ids=[experiment_id], filter_string="attributes.run_name LIKE 'trial-1%'"
    )
    assert sorted(frame["tags.mlflow.runName"]) == ["trial-1", "trial-10", "trial-11"]


def test_get_metric_history_of_30000_steps_pages_through_everything(client):
    experiment_id = client.create_experiment("long-series")
    run_id = client.create_run(experiment_id).info.run_id
    points = [Metric("loss", 1.0 / (step + 1), 1_700_000_000_000 + step, step) for step in range(30_000)]
    for start in range(0, len(points), 1000):
        client.log_batch(run_id, metrics=points[start : start + 1000])
    history = client.get_metric_history(run_id, "loss")
    assert len(history) == 30_000
    assert [m.step for m in history] == list(range(30_000))
    assert history[-1].value == 1.0 / 30_000


def test_deleted_runs_are_hidden_from_search_until_restored(client):
    experiment_id = client.create_experiment("lifecycle")
    run_id = client.create_run(experiment_id).info.run_id
    client.delete_run(run_id)
    assert client.search_runs([experiment_id]) == []
    assert [
        r.info.run_id for r in client.search_runs([experiment_id], run_view_type=ViewType.DELETED_ONLY)
    ] == [run_id]
    client.restore_run(run_id)
    assert [r.info.run_id for r in client.search_runs([experiment_id])] == [run_id]


def test_unknown_run_is_resource_does_not_exist(client):
    with pytest.raises(MlflowException) as error:
        client.get_run("0" * 32)
    assert error.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    # The client puts the code in front of the server's message.
    assert error.value.message == f"RESOURCE_DOES_NOT_EXIST: Run '{'0' * 32}' not found"


def test_the_client_sees_mlflows_own_error_texts(client):
    client.create_registered_model("taken")
    with pytest.raises(MlflowException) as error:
        client.create_registered_model("taken")
    assert error.value.message == "RESOURCE_ALREADY_EXISTS: Registered Model (name=taken) already exists."
    with pytest.raises(MlflowException) as error:
        client.get_registered_model("absent")
    assert error.value.message == "RESOURCE_DOES_NOT_EXIST: Registered Model with name=absent not found"
    run = client.create_run(client.create_experiment("errors"))
    with pytest.raises(MlflowException) as error:
        client.delete_tag(run.info.run_id, "never-set")
    assert error.value.message == (
        f"RESOURCE_DOES_NOT_EXIST: No tag with name: never-set in run with id {run.info.run_id}"
    )
