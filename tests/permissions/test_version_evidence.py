"""A model version's run is its evidence: registering one needs EDIT on the model *and* READ on
the run's experiment, on every path (service, native API, MLflow API by run id, by `runs:/`
source and by logged model). One who edits the model but cannot see the run is refused, and
nothing is written: no version, no audit event."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from accounts.permissions import Level
from audit.models import AuditEvent
from config.exceptions import PermissionDenied
from registry import services as registry_services
from registry.models import ModelVersion
from registry.permissions import set_model_permission
from tracker.permissions import set_experiment_permission

from .conftest import World, refused


@pytest.fixture
def model_editor(world: World) -> Any:
    """The stranger, made an editor of the model but given nothing on the run's experiment."""
    stranger = world.user("stranger")
    set_model_permission(actor=world.user("owner"), model=world.model, grantee=stranger, level=Level.EDIT)
    stranger.__dict__.pop("_labledger_levels", None)
    return stranger


def _mlflow_create(world: World, body: dict[str, Any]) -> Any:
    return Client().post(
        "/api/2.0/mlflow/model-versions/create",
        json.dumps({"name": world.model.name, **body}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {world.tokens['stranger']}"},
    )


def _native_create(world: World) -> Any:
    return Client().post(
        reverse("registry-api:versions", kwargs={"name": world.model.name}),
        json.dumps({"run_id": world.run.uuid}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {world.tokens['stranger']}"},
    )


SENDS = {
    "native": _native_create,
    "mlflow-run-id": lambda w: _mlflow_create(w, {"run_id": w.run.uuid}),
    "mlflow-runs-source": lambda w: _mlflow_create(w, {"source": f"runs:/{w.run.uuid}/model"}),
    "mlflow-logged-model": lambda w: _mlflow_create(w, {"model_id": w.logged_model.model_id}),
}


def _written(world: World) -> tuple[int, int]:
    return ModelVersion.objects.filter(model=world.model).count(), AuditEvent.objects.count()


@pytest.mark.parametrize("path", sorted(SENDS))
def test_an_editor_of_the_model_who_cannot_read_the_run_is_refused(world, model_editor, path):
    before = _written(world)
    response = SENDS[path](world)
    assert refused(response), (response.status_code, response.content[:300])
    assert b"Registering a model version from a run needs READ" in response.content
    assert _written(world) == before


@pytest.mark.parametrize("path", sorted(SENDS))
def test_reading_the_run_is_enough_beside_editing_the_model(world, model_editor, path):
    set_experiment_permission(
        actor=world.user("owner"), experiment=world.experiment, grantee=model_editor, level=Level.READ
    )
    versions, _ = _written(world)
    response = SENDS[path](world)
    assert response.status_code in (200, 201), response.content[:300]
    assert ModelVersion.objects.filter(model=world.model).count() == versions + 1


def test_the_service_refuses_before_writing(world, model_editor):
    before = _written(world)
    with pytest.raises(PermissionDenied) as refused:
        registry_services.create_model_version(actor=model_editor, model=world.model, run=world.run)
    assert str(refused.value) == (
        "Registering a model version from a run needs READ permission on experiment "
        f"{world.experiment.pk}; you have NO_PERMISSIONS."
    )
    assert _written(world) == before
