"""A model version registered by the model's name and the run's id, as both APIs send them, goes
in one statement on PostgreSQL (`create_model_version_from`, registry/services/version_insert.py)
that finds and checks the model and the run itself. These show that it writes exactly what the
checked path (`create_model_version`) writes, and that wherever the checked path would refuse,
the statement writes nothing and the checked path's own error is what the caller gets."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from accounts.permissions import Level
from accounts.roles import Role
from accounts.services import assign_role
from audit.models import AuditEvent
from config.exceptions import InvalidInput, NotFound, PermissionDenied
from config.inputs import TagInput
from registry import selectors
from registry import services as registry_services
from registry.models import ModelVersion, RegisteredModel
from registry.permissions import set_model_permission
from tracker import services as tracker_services
from tracker.selectors import get_run_ref

from .conftest import World

pytestmark = pytest.mark.usefixtures("postgres_statements")


class Finder:
    """The caller's lookups, as the APIs make them, counting whether the fast path needed them."""

    def __init__(self, user: Any, model_name: str, run_id: str) -> None:
        self.user, self.model_name, self.run_id, self.calls = user, model_name, run_id, 0

    def __call__(self) -> tuple[RegisteredModel, Any, None]:
        self.calls += 1
        model = selectors.get_registered_model(user=self.user, name=self.model_name)
        return model, get_run_ref(run_id=self.run_id, user=self.user), None


def _register(user: Any, model_name: str, run_id: str, **fields: Any) -> tuple[ModelVersion, Finder]:
    find = Finder(user, model_name, run_id)
    version = registry_services.create_model_version_from(
        actor=user, model_name=model_name, run_id=run_id, find=find, **fields
    )
    return version, find


def _written(world: World) -> tuple[int, int, Any]:
    model = RegisteredModel.all_objects.get(pk=world.model.pk)
    return ModelVersion.all_objects.count(), AuditEvent.objects.count(), model.updated_at


def _fresh(user: Any) -> Any:
    user.__dict__.pop("_labledger_levels", None)  # grants read once per request, as in a view
    return user


FIELDS = [
    {},
    {"source": "s3://bucket/models/digits", "description": "the <b>best</b> one", "run_link": "http://ci/1"},
]


@pytest.mark.parametrize("fields", FIELDS, ids=["defaults", "every-field"])
def test_one_statement_writes_what_the_checked_path_writes(world, fields):
    editor = world.user("editor")
    checked = registry_services.create_model_version(actor=editor, model=world.model, run=world.run, **fields)
    checked_event = AuditEvent.objects.latest("sequence")

    fast, find = _register(editor, world.model.name, world.run.uuid, **fields)

    assert find.calls == 0  # found, checked and written by the statement itself
    assert (fast.version, checked.version) == (3, 2)
    assert (fast.model.name, fast.run.uuid, fast.run.experiment_id) == (
        world.model.name,
        world.run.uuid,
        world.experiment.pk,
    )
    stored, checked = ModelVersion.objects.get(pk=fast.pk), ModelVersion.objects.get(pk=checked.pk)
    compared = ["model_id", "run_id", "source", "description", "run_link", "stage", "created_by_id"]
    assert {f: getattr(stored, f) for f in compared} == {f: getattr(checked, f) for f in compared}
    assert stored.source == fast.source == (fields.get("source") or f"{world.run.artifact_uri}/model")
    assert stored.logged_model_id is None and stored.created_at is not None
    event = AuditEvent.objects.latest("sequence")
    assert (event.action, event.object_type, event.object_id, event.actor_name) == (
        checked_event.action,
        checked_event.object_type,
        f"id:{fast.pk}",
        checked_event.actor_name,
    )
    assert event.after == {**checked_event.after, "version": 3}
    assert RegisteredModel.objects.get(pk=world.model.pk).updated_at >= stored.created_at


def _delete_run(world: World) -> None:
    tracker_services.delete_run(actor=world.user("owner"), run=world.run)


def _delete_model(world: World) -> None:
    registry_services.delete_registered_model(actor=world.user("owner"), model=world.model)


def _viewer_role(world: World) -> None:
    world.user("editor").groups.clear()  # the contributor role taken away: a viewer now
    assign_role(user=world.user("editor"), role=Role.VIEWER)


def _edits_model_only(world: World) -> None:
    set_model_permission(
        actor=world.user("owner"), model=world.model, grantee=world.user("stranger"), level=Level.EDIT
    )


# Who asks, for which model and run, after what; and the checked path's answer.
REFUSALS = {
    "reader-of-the-model": ("reader", None, None, None, PermissionDenied, "needs EDIT"),
    "stranger": ("stranger", None, None, None, PermissionDenied, "needs READ"),
    "editor-of-the-model-only": (
        "stranger", None, None, _edits_model_only, PermissionDenied, "from a run needs READ"
    ),
    "viewer-role": ("editor", None, None, _viewer_role, PermissionDenied, "contributor role"),
    "no-such-model": ("editor", "no-such-model", None, None, NotFound, "no-such-model"),
    "deleted-model": ("editor", None, None, _delete_model, NotFound, "guarded-model"),
    "no-such-run": ("editor", None, "f" * 32, None, NotFound, "f" * 32),
    "deleted-run": ("editor", None, None, _delete_run, InvalidInput, "is deleted"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_where_the_checked_path_refuses_the_statement_writes_nothing(world, case):
    persona, model_name, run_id, before, error, message = REFUSALS[case]
    if before is not None:
        before(world)
    user = _fresh(world.user(persona))
    written = _written(world)

    find = Finder(user, model_name or world.model.name, run_id or world.run.uuid)
    with pytest.raises(error, match=message):
        registry_services.create_model_version_from(
            actor=user, model_name=find.model_name, run_id=find.run_id, find=find
        )

    assert find.calls == 1  # the statement found nothing it may write, so the lookups answered
    assert _written(world) == written  # no version, no event, not even the model's lock


@pytest.mark.parametrize(
    ("fields", "field"),
    [({"source": "runs:/x/../../etc"}, "source"), ({"description": "x" * 5001}, "description")],
)
def test_a_bad_field_is_the_checked_paths_error_after_its_lookups(world, fields, field):
    written = _written(world)
    with pytest.raises(InvalidInput) as refused:
        _register(_fresh(world.user("editor")), world.model.name, world.run.uuid, **fields)
    assert refused.value.field == field
    assert _written(world) == written


def test_tags_take_the_checked_path(world):
    version, find = _register(
        world.user("editor"), world.model.name, world.run.uuid, tags=[TagInput("team", "b")]
    )
    assert find.calls == 1
    assert dict(version.tags.values_list("key", "value")) == {"team": "b"}
    assert AuditEvent.objects.latest("sequence").after["tags"] == {"team": "b"}


def _mlflow_create(world: World, persona: str, body: dict[str, Any]) -> Any:
    return Client().post(
        "/api/2.0/mlflow/model-versions/create",
        json.dumps(body),
        content_type="application/json",
        headers={"Authorization": f"Bearer {world.tokens[persona]}"},
    )


def test_the_mlflow_answer_is_the_same_either_way(world):
    """By run id the version goes in one statement; by logged model it takes the checked path:
    the client sees the same message but for the number, the logged model and the times."""
    body = {"name": world.model.name, "source": f"runs:/{world.run.uuid}/model", "description": "d"}
    fast = _mlflow_create(world, "editor", {**body, "run_id": world.run.uuid})
    checked = _mlflow_create(world, "editor", {**body, "model_id": world.logged_model.model_id})
    assert (fast.status_code, checked.status_code) == (200, 200)
    fast_version, checked_version = fast.json()["model_version"], checked.json()["model_version"]
    differ = {"version", "creation_timestamp", "last_updated_timestamp", "model_id"}
    assert {k: v for k, v in fast_version.items() if k not in differ} == {
        k: v for k, v in checked_version.items() if k not in differ
    }
    assert (fast_version["version"], checked_version["version"]) == ("2", "3")
    assert fast_version["run_id"] == world.run.uuid and fast_version["user_id"] == "editor-user"


def test_the_mlflow_refusal_names_the_model_first_as_mlflow_does(world):
    response = _mlflow_create(world, "editor", {"name": "missing", "run_id": "f" * 32})
    assert response.status_code == 404
    assert response.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert "missing" in response.json()["message"]


def test_the_native_answer_is_the_version_as_stored(world):
    """The answer is built from what the statement returned, not read back: it must say what a
    later read of the same version says, field for field."""
    headers = {"Authorization": f"Bearer {world.tokens['editor']}"}
    created = Client().post(
        f"/api/v1/models/{world.model.name}/versions",
        json.dumps({"run_id": world.run.uuid, "description": "from <i>CI</i>"}),
        content_type="application/json",
        headers=headers,
    )
    assert created.status_code == 201, created.content[:300]
    number = created.json()["version"]
    read = Client().get(f"/api/v1/models/{world.model.name}/versions/{number}", headers=headers)
    assert read.status_code == 200
    assert created.json() == read.json()
    assert (number, created.json()["run_id"]) == (2, world.run.uuid)


RUN = "a" * 32


@pytest.mark.parametrize(
    ("sent", "named"),
    [
        ({"run_id": RUN, "model_id": "", "source": ""}, RUN),
        ({"run_id": RUN, "model_id": "", "source": f"runs:/{RUN}/model"}, RUN),
        ({"run_id": "", "model_id": "", "source": f"runs:/{RUN}/model"}, RUN),
        ({"run_id": RUN, "model_id": "", "source": "s3://bucket/model"}, RUN),
        # Anything version_origin still has to work out or refuse goes its way.
        ({"run_id": RUN, "model_id": "m-1", "source": ""}, ""),
        ({"run_id": "", "model_id": "", "source": "models:/m-1"}, ""),
        ({"run_id": RUN, "model_id": "", "source": f"runs:/{'b' * 32}/model"}, ""),
        ({"run_id": "", "model_id": "", "source": "s3://bucket/model"}, ""),
    ],
)
def test_a_registration_goes_by_name_only_where_it_names_its_run_alone(sent, named):
    assert selectors.run_named_alone(**sent) == named


def test_a_registration_by_logged_model_keeps_it_on_the_checked_path(world):
    response = _mlflow_create(
        world, "editor", {"name": world.model.name, "model_id": world.logged_model.model_id}
    )
    assert response.status_code == 200, response.content[:300]
    stored = ModelVersion.objects.get(
        model=world.model, version=int(response.json()["model_version"]["version"])
    )
    assert (stored.logged_model_id, stored.run_id) == (world.logged_model.pk, world.run.pk)
    assert stored.source == f"models:/{world.logged_model.model_id}"
