"""The rules behind the matrices: levels, the default, roles on top, lists, grants and their audit,
and the promotion policy that no permission bypasses."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.permissions import SYSTEM_READER, Level, level_of
from accounts.roles import Role
from accounts.services import assign_role, create_api_token, revoke_api_token
from audit.models import AuditEvent
from config.exceptions import AlreadyExists, NotFound, PermissionDenied
from registry import selectors as registry_selectors
from registry import services as registry_services
from registry.models import Label
from registry.permissions import set_model_permission
from tests.factories import UserFactory
from tracker import selectors, services
from tracker.models import DEFAULT_EXPERIMENT_ID, Experiment
from tracker.permissions import set_experiment_permission
from tracker.selectors.runs import count_matching_runs
from tracker.selectors.uploads import get_upload, list_uploads

from .conftest import World, upload


def _fresh(user):
    user.__dict__.pop("_labledger_levels", None)
    user.__dict__.pop("_labledger_role", None)
    return user


def test_levels_come_from_grants_then_the_default(world: World, settings):
    assert [level_of(world.user(p), world.experiment) for p in ("owner", "editor", "reader", "stranger")] == [
        Level.MANAGE, Level.EDIT, Level.READ, Level.NO_PERMISSIONS,
    ]  # fmt: skip
    settings.DEFAULT_PERMISSION = "READ"
    assert level_of(_fresh(world.user("stranger")), world.experiment) is Level.READ


def test_roles_bound_every_level(world: World):
    viewer = UserFactory(username="viewing")
    assign_role(user=viewer, role=Role.VIEWER)
    set_experiment_permission(
        actor=world.user("owner"), experiment=world.experiment, grantee=viewer, level=Level.MANAGE
    )
    assert level_of(_fresh(viewer), world.experiment) is Level.READ  # a viewer never writes
    with pytest.raises(PermissionDenied):
        services.update_experiment(actor=viewer, experiment=world.experiment, description="x")
    admin = UserFactory(username="admin-user")
    assign_role(user=admin, role=Role.ADMIN)
    set_experiment_permission(
        actor=world.user("owner"), experiment=world.experiment, grantee=admin, level=Level.NO_PERMISSIONS
    )
    assert level_of(_fresh(admin), world.experiment) is Level.MANAGE  # admins manage everything
    services.delete_experiment(actor=admin, experiment=world.experiment)


def test_a_refusal_names_the_level_the_object_and_what_the_user_has(world: World):
    with pytest.raises(PermissionDenied) as refused:
        services.delete_run(actor=world.user("editor"), run=world.run)
    assert (
        str(refused.value)
        == f"Deleting a run needs MANAGE permission on experiment {world.experiment.pk}; you have EDIT."
    )


def test_the_creator_manages_what_they_create_and_the_event_says_who(world: World, settings):
    settings.DEFAULT_PERMISSION = "READ"
    stranger = world.user("stranger")
    mine = services.create_experiment(actor=stranger, name="mine")
    assert level_of(stranger, mine) is Level.MANAGE
    model = registry_services.create_registered_model(actor=stranger, name="mine-too")
    assert level_of(stranger, model) is Level.MANAGE
    assert AuditEvent.objects.filter(action="experiment.created", actor_name="stranger-user").exists()


def test_grants_are_audited_and_create_or_update_refuse_the_wrong_case(world: World):
    owner, stranger = world.user("owner"), world.user("stranger")
    set_experiment_permission(
        actor=owner, experiment=world.experiment, grantee=stranger, level=Level.READ, only="create"
    )
    with pytest.raises(AlreadyExists):
        set_experiment_permission(
            actor=owner, experiment=world.experiment, grantee=stranger, level=Level.EDIT, only="create"
        )
    with pytest.raises(NotFound):
        set_model_permission(
            actor=owner, model=world.model, grantee=stranger, level=Level.EDIT, only="update"
        )
    event = AuditEvent.objects.filter(action="experiment.permission_set").latest("sequence")
    assert (event.actor_name, event.object_id, event.before, event.after) == (
        "owner-user", str(world.experiment.pk), None, {"username": "stranger-user", "permission": "READ"},
    )  # fmt: skip


def test_lists_show_only_what_the_user_may_read(world: World, settings):
    other = services.create_experiment(actor=world.user("stranger"), name="stranger's own")
    services.start_run(actor=world.user("stranger"), experiment=other, name="theirs")
    registry_services.create_registered_model(actor=world.user("stranger"), name="stranger-model")
    reader, stranger = world.user("reader"), world.user("stranger")

    def names(user):
        return sorted(e.name for e in selectors.list_experiments(user=user))

    # The other one is NO_PERMISSIONS by default here; Default is everyone's (EDIT).
    assert names(reader) == ["Default", "guarded"]
    assert names(stranger) == ["Default", "stranger's own"]
    ids = [world.experiment.pk, other.pk]
    assert [d.run.name for d in selectors.search_runs(user=reader, experiment_ids=ids).runs] == ["evidence"]
    assert count_matching_runs(user=stranger, experiment_ids=ids) == 1
    assert [m.name for m in registry_selectors.list_registered_models(user=reader)] == ["guarded-model"]
    # A search finds nothing the user may not read, however well it matches.
    assert [e.name for e in selectors.list_experiments(user=reader, text="stranger")] == []
    assert [m.name for m in registry_selectors.list_registered_models(user=reader, text="stranger")] == []
    assert [m.name for m in registry_selectors.list_registered_models(user=stranger, text="STRANGER")] == [
        "stranger-model"
    ]
    assert [v.name for v in registry_selectors.search_model_versions(user=stranger).items] == []
    assert len(registry_selectors.search_model_versions(user=SYSTEM_READER).items) == 1
    settings.DEFAULT_PERMISSION = "READ"  # the usual default: everything shows but explicit NO_PERMISSIONS
    assert names(_fresh(stranger)) == ["Default", "guarded", "stranger's own"]
    set_experiment_permission(
        actor=world.user("owner"), experiment=world.experiment, grantee=stranger, level=Level.NO_PERMISSIONS
    )
    assert names(_fresh(stranger)) == ["Default", "stranger's own"]


@pytest.mark.parametrize(
    ("method", "endpoint", "message", "field"),
    [
        ("POST", "experiments/search", {}, "experiments"),
        ("POST", "runs/search", None, "runs"),
        ("GET", "registered-models/search", {}, "registered_models"),
        ("GET", "model-versions/search", {}, "model_versions"),
    ],
)
def test_mlflow_searches_show_only_what_the_user_may_read(world: World, method, endpoint, message, field):
    message = message if message is not None else {"experiment_ids": [str(world.experiment.pk)]}
    url = f"/api/2.0/mlflow/{endpoint}"
    everyones = 1 if field == "experiments" else 0  # the Default experiment is everyone's
    for persona, count in (("reader", 1 + everyones), ("stranger", everyones)):
        headers = {"Authorization": f"Bearer {world.tokens[persona]}"}
        if method == "GET":
            response = Client().get(url, message, headers=headers)
        else:
            response = Client().post(
                url, json.dumps(message), content_type="application/json", headers=headers
            )
        assert response.status_code == 200, response.content
        assert len(response.json().get(field, [])) == count, (persona, response.json())


def test_native_lists_show_only_what_the_user_may_read(world: World, api_client_for):
    for persona, expected in (("reader", ["guarded"]), ("stranger", [])):
        client = api_client_for(world.user(persona))
        assert [e["name"] for e in client.get(reverse("tracker-api:experiments")).json()["experiments"]] == [
            "Default",
            *expected,
        ]  # the Default experiment is everyone's
        models = client.get(reverse("registry-api:models")).json()["models"]
        assert len(models) == len(expected)


def test_a_run_search_over_experiments_shows_no_keys_of_one_the_user_may_not_read(world, api_client_for):
    url = f"/api/v1/runs?experiment_id={world.experiment.pk}"
    read = api_client_for(world.user("reader")).get(url).json()
    assert (len(read["runs"]), read["metric_keys"]) == (1, ["acc"])
    blind = api_client_for(world.user("stranger")).get(url).json()
    assert (blind["runs"], blind["param_keys"], blind["metric_keys"]) == ([], [], [])


def test_manage_on_a_model_never_moves_a_protected_alias_without_review(world: World):
    owner = world.user("owner")
    with pytest.raises(PermissionDenied):
        registry_services.set_alias(actor=owner, model=world.model, alias="production", version=world.version)
    request = registry_services.request_promotion(
        actor=owner, version=world.version, label=Label.alias("production"), justification="best"
    )
    with pytest.raises(PermissionDenied):  # MANAGE does not make the owner a reviewer
        registry_services.review_promotion(actor=owner, request=request, decision="approve")
    reviewer = UserFactory(username="rev")
    assign_role(user=reviewer, role=Role.REVIEWER)
    # The policy decides who reviews, but only among those who may read the model at all.
    with pytest.raises(PermissionDenied, match="needs READ permission"):
        registry_services.review_promotion(actor=reviewer, request=request, decision="approve")
    set_model_permission(actor=owner, model=world.model, grantee=reviewer, level=Level.READ)
    with pytest.raises(PermissionDenied, match="needs READ on the experiment"):  # and its evidence
        registry_services.review_promotion(actor=_fresh(reviewer), request=request, decision="approve")
    set_experiment_permission(actor=owner, experiment=world.experiment, grantee=reviewer, level=Level.READ)
    registry_services.review_promotion(actor=_fresh(reviewer), request=request, decision="approve")
    assert registry_selectors.get_version_by_alias(model=world.model, alias="production") == world.version


def test_an_admin_may_revoke_any_users_token(world: World):
    admin = UserFactory(username="token-admin")
    assign_role(user=admin, role=Role.ADMIN)
    token, raw = create_api_token(user=world.user("reader"), name="ci")
    with pytest.raises(PermissionDenied):
        revoke_api_token(user=world.user("owner"), token_id=token.pk)
    assert revoke_api_token(user=admin, token_id=token.pk).revoked_at is not None
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get(reverse("api-me")).status_code == 401


def test_the_default_experiment_is_everyones_to_log_to(world: World, settings):
    """MLflow scripts that name no experiment log to Default: everyone without a grant holds at
    least DEFAULT_EXPERIMENT_PERMISSION (EDIT) on it, even where the default is NO_PERMISSIONS;
    roles still cap it, a user's own grant still wins, and the setting turns it off."""
    default = Experiment.objects.get(pk=DEFAULT_EXPERIMENT_ID)
    stranger = world.user("stranger")
    assert level_of(stranger, default) is Level.EDIT
    assert default in selectors.list_experiments(user=stranger)
    services.start_run(actor=stranger, experiment=default, name="quick try")
    with pytest.raises(PermissionDenied, match="needs MANAGE permission on experiment 0; you have EDIT"):
        services.delete_experiment(actor=stranger, experiment=default)
    viewer = UserFactory(username="default-viewer")
    assign_role(user=viewer, role=Role.VIEWER)
    assert level_of(viewer, default) is Level.READ
    with pytest.raises(PermissionDenied):
        services.start_run(actor=viewer, experiment=default, name="not mine to write")
    admin = UserFactory(username="default-admin")
    assign_role(user=admin, role=Role.ADMIN)
    set_experiment_permission(actor=admin, experiment=default, grantee=stranger, level=Level.NO_PERMISSIONS)
    assert level_of(_fresh(stranger), default) is Level.NO_PERMISSIONS
    assert default not in selectors.list_experiments(user=stranger)
    reader = _fresh(world.user("reader"))
    settings.DEFAULT_EXPERIMENT_PERMISSION = "NO_PERMISSIONS"  # off: Default follows the default
    assert level_of(reader, default) is Level.NO_PERMISSIONS
    assert default not in selectors.list_experiments(user=reader)
    settings.DEFAULT_PERMISSION = "MANAGE"  # and never lowers a higher default
    settings.DEFAULT_EXPERIMENT_PERMISSION = "EDIT"
    assert level_of(_fresh(reader), default) is Level.MANAGE


def test_the_default_experiments_permissions_page_names_everyones_level(world: World):
    client = Client()
    client.force_login(world.user("reader"))
    page = client.get(reverse("dashboard:experiment-permissions", args=[DEFAULT_EXPERIMENT_ID]))
    assert "Everyone else has the default, <strong>EDIT</strong>" in page.content.decode()
    guarded = client.get(reverse("dashboard:experiment-permissions", args=[world.experiment.pk]))
    assert "Everyone else has the default, <strong>NO_PERMISSIONS</strong>" in guarded.content.decode()


def test_uploads_carry_their_experiments_read_and_an_untargeted_one_is_its_uploaders(
    world: World, api_client_for
):
    to_run, anywhere = upload(world), upload(world, to_run=False)
    expected = {"owner": [anywhere.pk, to_run.pk], "reader": [to_run.pk], "stranger": []}
    for persona, shown in expected.items():
        user = world.user(persona)
        assert [u.pk for u in list_uploads(user=user)] == shown, persona
        listed = api_client_for(user).get(reverse("tracker-api:uploads")).json()["uploads"]
        assert [u["id"] for u in listed] == shown, persona
    page = Client()
    page.force_login(world.user("reader"))
    assert [u.pk for u in page.get(reverse("dashboard:upload-list")).context["uploads"]] == [to_run.pk]
    refused = api_client_for(world.user("reader")).get(
        reverse("tracker-api:upload", kwargs={"upload_id": anywhere.pk})
    )
    assert (refused.status_code, refused.json()["error_code"]) == (403, "PERMISSION_DENIED")
    assert page.get(reverse("dashboard:upload-detail", args=[anywhere.pk])).status_code == 403
    assert get_upload(upload_id=anywhere.pk, user=SYSTEM_READER) == anywhere
