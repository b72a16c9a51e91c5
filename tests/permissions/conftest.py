"""A small world for permission tests: one experiment and one registered model, created by their
owner through the services (so the owner holds MANAGE), with an editor (EDIT), a reader (READ)
and a stranger (no grant). Everyone is a contributor: what differs is only their permission.

The default for users without a grant is NO_PERMISSIONS here, so the stranger may do nothing.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import pytest
from django.http import HttpResponse

from accounts.permissions import Level
from accounts.roles import Role
from accounts.services import assign_role, create_api_token
from config.inputs import TagInput
from registry import services as registry_services
from registry.models import Label, ModelVersion, PromotionRequest, RegisteredModel
from registry.permissions import set_model_permission
from tests.factories import UserFactory
from tracker import services
from tracker.models import Experiment, LoggedModel, Run
from tracker.permissions import set_experiment_permission
from tracker.services import MetricInput
from tracker.services.uploads import create_upload

PERSONAS = ("owner", "editor", "reader", "stranger")
# What each persona may do: the lowest level that is refused.
HOLDS = {"owner": Level.MANAGE, "editor": Level.EDIT, "reader": Level.READ, "stranger": Level.NO_PERMISSIONS}


@dataclass
class World:
    users: dict[str, Any]
    experiment: Experiment
    run: Run
    logged_model: LoggedModel
    model: RegisteredModel
    version: ModelVersion
    tokens: dict[str, str]

    def user(self, persona: str) -> Any:
        return self.users[persona]


def _user(name: str) -> Any:
    user = UserFactory(username=name)
    assign_role(user=user, role=Role.CONTRIBUTOR)
    return user


@pytest.fixture
def world(db, settings) -> World:
    settings.DEFAULT_PERMISSION = "NO_PERMISSIONS"
    users = {persona: _user(f"{persona}-user") for persona in PERSONAS}
    owner = users["owner"]
    experiment = services.create_experiment(actor=owner, name="guarded", tags=[TagInput("team", "a")])
    UserFactory(username="someone-else")
    run = services.start_run(
        actor=owner, experiment=experiment, name="evidence", tags=[TagInput("team", "a")]
    )
    services.log_batch(actor=owner, run=run, metrics=[MetricInput("acc", 0.5, 1, 0)])
    services.store_artifact(actor=owner, owner=run, path="notes/readme.txt", content=io.BytesIO(b"hello"))
    logged_model = services.create_logged_model(
        actor=owner, experiment=experiment, name="m", source_run=run, tags=[TagInput("team", "a")]
    )
    model = registry_services.create_registered_model(actor=owner, name="guarded-model")
    registry_services.set_registered_model_tag(actor=owner, model=model, tag=TagInput("team", "a"))
    version = registry_services.create_model_version(
        actor=owner, model=model, run=run, source="runs:/x/model"
    )
    registry_services.set_model_version_tag(actor=owner, version=version, tag=TagInput("team", "a"))
    registry_services.set_alias(actor=owner, model=model, alias="candidate", version=version)
    for persona, level in (("editor", Level.EDIT), ("reader", Level.READ)):
        set_experiment_permission(actor=owner, experiment=experiment, grantee=users[persona], level=level)
        set_model_permission(actor=owner, model=model, grantee=users[persona], level=level)
    tokens = {persona: create_api_token(user=user, name="perm")[1] for persona, user in users.items()}
    for user in users.values():  # the grants above were cached on these objects
        user.__dict__.pop("_labledger_levels", None)
    return World(users, experiment, run, logged_model, model, version, tokens)


def promotion_request(world: World) -> Any:
    """The owner's pending request to move `production` to the world's version (opened once)."""
    found = PromotionRequest.objects.filter(version=world.version).first()
    return found or registry_services.request_promotion(
        actor=world.user("owner"),
        version=world.version,
        label=Label.alias("production"),
        justification="best",
    )


def upload(world: World, *, to_run: bool = True) -> Any:
    """The owner's metric file, to the world's run (so under its experiment's permission) or,
    with `to_run=False`, naming its runs in a column (no experiment: the uploader's alone)."""
    if to_run:
        content, target = b"key,step,value\nacc,5,0.7\n", {"run": world.run}
    else:
        content, target = f"run_id,key,step,value\n{world.run.uuid},acc,6,0.8\n".encode(), {}
    return create_upload(
        actor=world.user("owner"), content=io.BytesIO(content), file_name="m.csv", **target
    ).upload


def logged_model(world: World) -> Any:
    """A model the world's run logged, with one file (made once)."""
    found = LoggedModel.objects.filter(source_run=world.run, name="with-a-file").first()
    if found is not None:
        return found
    owner = world.user("owner")
    model = services.create_logged_model(
        actor=owner, experiment=world.experiment, name="m", source_run=world.run
    )
    services.store_artifact(actor=owner, owner=model, path="MLmodel", content=io.BytesIO(b"flavors: {}\n"))
    return model


def materialised(response: Any) -> Any:
    """A download's body read into a plain response, since the verdict reads `content`."""
    if not response.streaming:
        return response
    body = b"".join(response.streaming_content)
    return HttpResponse(body, status=response.status_code, content_type=response["Content-Type"])


def refused(response: Any) -> bool:
    """A 403 naming PERMISSION_DENIED (JSON APIs), Django's 403 page, or a form page shown again
    with the service's refusal (the upload page keeps the chosen file's form on screen)."""
    if response.status_code == 400 and not response.get("Content-Type", "").startswith("application/json"):
        return b" permission on " in response.content
    if response.status_code != 403:
        return False
    if response.get("Content-Type", "").startswith("application/json"):
        return response.json().get("error_code") == "PERMISSION_DENIED"
    return True


def assert_obeys(persona: str, needed: Level | None, send: Any, *, looked_up: bool = False) -> None:
    """`send(persona)` is refused exactly when the persona holds less than `needed`; with no level
    needed (a role, the policy or the requester decides), the persona fares as the owner does,
    except that one who may not read the object it names (`looked_up`) is refused first."""
    response = send(persona)
    shown = (response.status_code, response.content[:300])
    if needed is None and looked_up and HOLDS[persona] < Level.READ:
        assert refused(response), shown
    elif needed is None:
        owner = send("owner") if persona != "owner" else response
        assert refused(response) == refused(owner), shown
    elif HOLDS[persona] >= needed:
        assert response.status_code < 400, shown
    else:
        assert refused(response), shown
