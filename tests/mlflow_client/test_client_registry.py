"""MLflow 3 model logging and the registry through the client: log_model, register_model, aliases,
stages, load_model from an alias — all landing in the audited registry."""

from __future__ import annotations

import warnings

import mlflow
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException

from audit.models import AuditEvent
from registry.models import AliasHistory, Label, ModelVersion
from registry.services import request_promotion, review_promotion

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
        client.transition_model_version_stage("ranker", "1", "Staging")
        client.transition_model_version_stage("ranker", "2", "Staging", archive_existing_versions=True)
        latest = client.get_latest_versions("ranker", stages=["Staging"])
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


PROTECTED = (
    "{field}: '{name}' is a protected {kind} of registered model 'guarded': it moves only through an "
    "approved promotion request; open one with POST /api/v1/promotion-requests or from the version's page"
)


def _guarded_versions(client, count: int = 2) -> list[str]:
    mlflow.set_experiment("guarded")
    client.create_registered_model("guarded")
    run_ids = []
    for _ in range(count):
        with mlflow.start_run() as active:
            mlflow.log_metric("val_f1", 0.9)
        run_ids.append(active.info.run_id)
    return [client.create_model_version("guarded", f"runs:/{r}/model", run_id=r).version for r in run_ids]


def test_the_client_cannot_move_production_by_alias_or_stage(client):
    _guarded_versions(client)
    with pytest.raises(MlflowException) as alias_error:
        client.set_registered_model_alias("guarded", "production", "1")
    assert alias_error.value.error_code == "PERMISSION_DENIED"
    assert alias_error.value.message == (
        "PERMISSION_DENIED: " + PROTECTED.format(field="alias", name="production", kind="alias")
    )
    with warnings.catch_warnings(), pytest.raises(MlflowException) as stage_error:
        warnings.simplefilter("ignore", FutureWarning)
        client.transition_model_version_stage("guarded", "1", "Production")
    assert stage_error.value.error_code == "PERMISSION_DENIED"
    assert stage_error.value.message == (
        "PERMISSION_DENIED: " + PROTECTED.format(field="stage", name="Production", kind="stage")
    )
    assert client.get_registered_model("guarded").aliases == {}
    assert client.get_model_version("guarded", "1").current_stage == "None"


def test_the_client_sees_production_move_only_after_approval_and_cannot_delete_its_holder(
    client, requester, reviewer, contributor
):
    _guarded_versions(client)
    version = ModelVersion.objects.get(model__name="guarded", version=2)
    request = request_promotion(
        actor=requester, version=version, label=Label.alias("production"), justification="better"
    )
    with pytest.raises(MlflowException):
        client.get_model_version_by_alias("guarded", "production")
    review_promotion(actor=reviewer, request=request, decision="approve", comment="ok")

    assert client.get_model_version_by_alias("guarded", "production").version == "2"
    with pytest.raises(MlflowException) as error:
        client.delete_registered_model("guarded")
    assert error.value.error_code == "PERMISSION_DENIED"
    assert error.value.message == (
        "PERMISSION_DENIED: name: registered model 'guarded' cannot be deleted: "
        "the protected alias 'production' points at version 2"
    )
    with pytest.raises(MlflowException) as version_error:
        client.delete_model_version("guarded", "2")
    assert version_error.value.error_code == "PERMISSION_DENIED"
    # An unprotected alias still moves directly, and a deleted version disappears as in MLflow.
    client.set_registered_model_alias("guarded", "staging", "1")
    client.delete_model_version("guarded", "1")
    assert [v.version for v in client.search_model_versions("name = 'guarded'")] == ["2"]
    assert AliasHistory.objects.get(name="staging").removed_by == contributor
