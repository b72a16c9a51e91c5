"""Client calls that training scripts make beyond the issue's list: background logging while
tags change, tables, nested artifact folders, parent runs, dataset filters, model copies."""

from __future__ import annotations

import threading

import mlflow
import pandas as pd
import pytest

from registry.models import ModelVersion
from tracker.models import MetricPoint, Tag

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.services
def test_background_logging_from_threads_while_tags_change_stores_everything(postgres, client):
    """Asynchronous metric batches and tag writes on one run at once (this once deadlocked on
    PostgreSQL: see docs/architecture.md, "Concurrency and durability"). SQLite's in-memory test
    database locks whole tables without waiting, so this needs the real server."""
    run_id = client.create_run(mlflow.set_experiment("async").experiment_id).info.run_id
    failures: list[BaseException] = []

    def train(worker: int) -> None:
        try:
            for step in range(25):
                client.log_metric(run_id, f"loss{worker}", 1 / (step + 1), step=step, synchronous=False)
                if step % 5 == 0:
                    client.set_tag(run_id, f"phase{worker}", str(step))
        except BaseException as error:  # reported below, in the test's thread
            failures.append(error)

    threads = [threading.Thread(target=train, args=(worker,)) for worker in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Once, here: the client's flush stops and restarts its shared queue, so a flush in one thread
    # while another still logs fails in the client ("cannot schedule new futures after shutdown").
    mlflow.flush_async_logging()

    assert failures == []
    for worker in range(3):
        history = client.get_metric_history(run_id, f"loss{worker}")
        assert sorted(point.step for point in history) == list(range(25))
    assert dict(
        Tag.objects.filter(run__uuid=run_id, key__startswith="phase").values_list("key", "value")
    ) == {
        "phase0": "20",
        "phase1": "20",
        "phase2": "20",
    }
    assert MetricPoint.objects.filter(run__uuid=run_id).count() == 75


def test_a_logged_table_loads_back_as_the_same_frame(client):
    frame = pd.DataFrame({"image": ["a.png", "b.png"], "label": [0, 1], "score": [0.25, 0.75]})
    with mlflow.start_run() as run:
        mlflow.log_table(frame, "eval/predictions.json")

    loaded = mlflow.load_table("eval/predictions.json", run_ids=[run.info.run_id])

    pd.testing.assert_frame_equal(loaded.drop(columns="run_id", errors="ignore"), frame)


def test_nested_artifact_folders_list_and_download_whole(client, tmp_path):
    source = tmp_path / "source"
    (source / "plots" / "epoch-1").mkdir(parents=True)
    (source / "plots" / "epoch-1" / "loss.txt").write_text("0.5")
    (source / "summary.txt").write_text("done")
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(source), "outputs")
    run_id = run.info.run_id

    listed = [(item.path, item.is_dir) for item in client.list_artifacts(run_id, "outputs")]
    downloaded = mlflow.artifacts.download_artifacts(run_id=run_id, dst_path=str(tmp_path / "copy"))

    assert listed == [("outputs/plots", True), ("outputs/summary.txt", False)]
    copy = tmp_path / "copy" / "outputs"
    assert (copy / "plots" / "epoch-1" / "loss.txt").read_text() == "0.5"
    assert (copy / "summary.txt").read_text() == "done"
    assert downloaded == str(tmp_path / "copy")


def test_parent_runs_and_dataset_filters_find_the_right_runs(client):
    mlflow.set_experiment("sweep-with-data")
    with mlflow.start_run(run_name="sweep") as parent:
        for name in ("train-v1", "train-v2"):
            with mlflow.start_run(run_name=name, nested=True):
                data = pd.DataFrame({"x": [1, 2, 3], "y": [0, 1, 0]})
                mlflow.log_input(mlflow.data.from_pandas(data, name=name, targets="y"), context="training")
    parent_id = parent.info.run_id

    children = mlflow.search_runs(
        filter_string=f"tags.mlflow.parentRunId = '{parent_id}'", output_format="list"
    )
    by_dataset = mlflow.search_runs(filter_string="datasets.name = 'train-v2'", output_format="list")

    assert sorted(run.info.run_name for run in children) == ["train-v1", "train-v2"]
    assert [run.info.run_name for run in by_dataset] == ["train-v2"]
    assert mlflow.get_parent_run(by_dataset[0].info.run_id).info.run_id == parent_id


def test_copy_model_version_registers_the_same_run_under_another_name(client):
    class Doubler(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return model_input * 2

    with mlflow.start_run() as run:
        logged = mlflow.pyfunc.log_model(name="model", python_model=Doubler())
    mlflow.register_model(logged.model_uri, "doubler-staging")

    copied = client.copy_model_version("models:/doubler-staging/1", "doubler-production")

    assert (copied.name, copied.version, copied.run_id) == ("doubler-production", "1", run.info.run_id)
    stored = ModelVersion.objects.get(model__name="doubler-production")
    assert stored.run.uuid == run.info.run_id
    reloaded = mlflow.pyfunc.load_model("models:/doubler-production/1")
    assert reloaded.predict(pd.DataFrame({"x": [2]}))["x"].tolist() == [4]


def test_names_with_spaces_are_found_again_by_the_client(client):
    """set_experiment and register_model look the name up again exactly as they created it."""
    first = mlflow.set_experiment("spaced sweep ").experiment_id
    assert mlflow.set_experiment("spaced sweep ").experiment_id == first  # the second call crashed
    with mlflow.start_run() as run:
        mlflow.log_param("lr", "0.1")
    # What register_model does: create the model, then a version under the name it gave.
    client.create_registered_model(" churn ")
    version = client.create_model_version(" churn ", f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    assert (version.name, version.version) == (" churn ", "1")
    client.set_registered_model_tag(" churn ", "team", "growth")
    assert client.get_registered_model(" churn ").tags == {"team": "growth"}
    assert ModelVersion.objects.get(model__name=" churn ").run.uuid == run.info.run_id


def test_a_metric_logged_with_its_dataset_does_not_add_the_dataset_again(client):
    """The client re-sends the dataset, without its context, with every metric that names it."""
    data = mlflow.data.from_pandas(pd.DataFrame({"x": [1, 2], "y": [0, 1]}), name="train", targets="y")
    with mlflow.start_run() as run:
        mlflow.log_input(data, context="training")
        mlflow.log_metric("loss", 0.5, dataset=data)
        mlflow.log_metric("loss", 0.4, step=1, dataset=data)
    inputs = client.get_run(run.info.run_id).inputs.dataset_inputs
    assert [(i.dataset.name, [(t.key, t.value) for t in i.tags]) for i in inputs] == [
        ("train", [("mlflow.data.context", "training")])
    ]
