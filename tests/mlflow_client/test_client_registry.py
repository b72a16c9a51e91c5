"""MLflow 3 model logging and the registry through the client: log_model, register_model, aliases,
stages, load_model from an alias — all landing in the audited registry."""

from __future__ import annotations

import warnings

import mlflow
import pandas as pd
import pytest

from audit.models import AuditEvent
from registry.models import AliasHistory, ModelVersion

pytestmark = pytest.mark.django_db(transaction=True)


def _log_doubling_model() -> mlflow.models.model.ModelInfo:
    class Doubler(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return model_input * 2

    return mlflow.pyfunc.log_model(name="model", python_model=Doubler(), pip_requirements=["mlflow"])


def test_log_register_alias_and_load_a_pyfunc_model(client, contributor):
    mlflow.set_experiment("registry-flow")
    with mlflow.start_run() as active:
        mlflow.log_metric("val_acc", 0.93)
        info = _log_doubling_model()
    assert info.model_uri.startswith("models:/m-")
    logged = client.get_logged_model(info.model_id)
    assert logged.status == "READY"
    assert logged.source_run_id == active.info.run_id

    version = mlflow.register_model(info.model_uri, "doubler")
    assert version.version == "1"
    assert version.run_id == active.info.run_id
    client.set_registered_model_alias("doubler", "champion", "1")
    assert client.get_model_version_by_alias("doubler", "champion").version == "1"

    model = mlflow.pyfunc.load_model("models:/doubler@champion")
    assert model.predict(pd.DataFrame({"x": [1, 2]}))["x"].tolist() == [2, 4]

    client.delete_registered_model_alias("doubler", "champion")
    assert client.get_registered_model("doubler").aliases == {}
    history = AliasHistory.objects.get(name="champion")
    assert history.assigned_by == contributor and history.removed_by == contributor
    actions = list(
        AuditEvent.objects.filter(actor=contributor, action__startswith="model_alias").values_list(
            "action", flat=True
        )
    )
    assert actions == ["model_alias.set", "model_alias.deleted"]


def test_search_model_versions_and_transition_stages(client):
    mlflow.set_experiment("stages")
    run_ids = []
    for _ in range(2):
        with mlflow.start_run() as active:
            mlflow.log_metric("score", 1.0)
        run_ids.append(active.info.run_id)
    client.create_registered_model("ranker")
    for run_id in run_ids:
        client.create_model_version("ranker", source=f"runs:/{run_id}/model", run_id=run_id)
    found = client.search_model_versions("name = 'ranker'")
    assert sorted(v.version for v in found) == ["1", "2"]
    assert [v.run_id for v in client.search_model_versions(f"run_id = '{run_ids[1]}'")] == [run_ids[1]]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        client.transition_model_version_stage("ranker", "1", "Production")
        client.transition_model_version_stage("ranker", "2", "Production", archive_existing_versions=True)
        latest = client.get_latest_versions("ranker", stages=["Production"])
    assert [v.version for v in latest] == ["2"]
    assert client.get_model_version("ranker", "1").current_stage == "Archived"
    assert ModelVersion.objects.get(model__name="ranker", version=1).stage == "Archived"


def test_registering_an_existing_name_adds_a_version(client):
    mlflow.set_experiment("re-register")
    with mlflow.start_run():
        first = _log_doubling_model()
    with mlflow.start_run():
        second = _log_doubling_model()
    assert mlflow.register_model(first.model_uri, "twice").version == "1"
    assert mlflow.register_model(second.model_uri, "twice").version == "2"
    assert client.get_model_version_download_uri("twice", "2").endswith(
        f"/models/{second.model_id}/artifacts"
    )
