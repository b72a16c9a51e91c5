"""Promotion requests carry their registered model's READ: lists (the API's, the review queue, the
open requests, the navigation badge) leave out what the user may not read, a request page or call
is a 403, and so is every action on it. Who may review stays the policy's decision, but only
among those who may read the model; MANAGE never stands in for a review."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from accounts.permissions import Level
from accounts.roles import Role
from accounts.services import assign_role
from config.exceptions import PermissionDenied
from registry import selectors
from registry import services as registry_services
from registry.models import Label, PromotionRequest
from registry.permissions import set_model_permission
from tests.factories import UserFactory
from tracker.permissions import set_experiment_permission

from .conftest import World, promotion_request


def _reviewer(name: str) -> Any:
    user = UserFactory(username=name)
    assign_role(user=user, role=Role.REVIEWER)
    return user


@pytest.fixture
def pending(world: World) -> PromotionRequest:
    return promotion_request(world)


@pytest.fixture
def readers(world: World) -> dict[str, Any]:
    """A reviewer who may read the model and its version's evidence (the source run's
    experiment), and one who may read neither (NO_PERMISSIONS is the default here)."""
    reading, blind = _reviewer("reading-reviewer"), _reviewer("blind-reviewer")
    set_model_permission(actor=world.user("owner"), model=world.model, grantee=reading, level=Level.READ)
    set_experiment_permission(
        actor=world.user("owner"), experiment=world.experiment, grantee=reading, level=Level.READ
    )
    reading.__dict__.pop("_labledger_levels", None)
    return {"reading": reading, "blind": blind}


def _page(user: Any, name: str, *args: Any) -> Any:
    client = Client()
    client.force_login(user)
    return client.get(reverse(f"dashboard:{name}", args=args))


def test_the_api_lists_only_requests_of_readable_models(world, pending, api_client_for):
    url = reverse("registry-api:promotion-requests")
    for persona, shown in (("reader", [pending.pk]), ("stranger", [])):
        listed = api_client_for(world.user(persona)).get(url).json()["requests"]
        assert [r["id"] for r in listed] == shown, persona
    filtered = api_client_for(world.user("stranger")).get(url, {"model": world.model.name})
    assert (filtered.status_code, filtered.json()["error_code"]) == (403, "PERMISSION_DENIED")


def test_a_request_of_an_unreadable_model_is_a_403_on_the_api(world, pending, api_client_for):
    client = api_client_for(world.user("stranger"))
    for method, name, body in (
        ("get", "registry-api:promotion-request", None),
        ("post", "registry-api:promotion-request-withdraw", {}),
        ("post", "registry-api:promotion-request-reviews", {"decision": "approve"}),
    ):
        response = getattr(client, method)(
            reverse(name, kwargs={"request_id": pending.pk}), body, format="json"
        )
        assert (response.status_code, response.json()["error_code"]) == (403, "PERMISSION_DENIED"), name
    assert (
        api_client_for(world.user("reader"))
        .get(reverse("registry-api:promotion-request", kwargs={"request_id": pending.pk}))
        .status_code
        == 200
    )
    pending.refresh_from_db()
    assert pending.status == PromotionRequest.Status.PENDING


def test_opening_a_request_on_an_unreadable_model_is_refused_on_the_api(world, api_client_for):
    body = {"model": world.model.name, "version": 1, "alias": "production", "justification": "mine"}
    response = api_client_for(world.user("stranger")).post(
        reverse("registry-api:promotion-requests"), body, format="json"
    )
    assert (response.status_code, response.json()["error_code"]) == (403, "PERMISSION_DENIED")
    assert not PromotionRequest.objects.exists()


def test_review_pages_hide_and_refuse_requests_of_unreadable_models(world, pending, readers):
    stranger = world.user("stranger")
    assert pending.pk not in [r.pk for r in _page(stranger, "review-queue").context["open"]]
    assert pending.pk in [r.pk for r in _page(world.user("reader"), "review-queue").context["open"]]
    assert _page(stranger, "request-detail", pending.pk).status_code == 403
    client = Client()
    client.force_login(stranger)
    for name, data in (("request-review", {"decision": "approve"}), ("request-withdraw", {})):
        assert client.post(reverse(f"dashboard:{name}", args=[pending.pk]), data).status_code == 403, name
    pending.refresh_from_db()
    assert pending.status == PromotionRequest.Status.PENDING


def test_a_reviewer_needs_read_to_see_and_review_a_request(world, pending, readers):
    reading, blind = readers["reading"], readers["blind"]
    assert [r.pk for r in selectors.review_queue_for(user=reading)] == [pending.pk]
    assert list(selectors.review_queue_for(user=blind)) == []
    assert selectors.pending_review_count(user=blind) == 0
    assert _page(blind, "review-queue").context["queue"] == []
    assert _page(blind, "request-detail", pending.pk).status_code == 403
    with pytest.raises(PermissionDenied) as refused:
        registry_services.review_promotion(actor=blind, request=pending, decision="approve")
    assert str(refused.value) == (
        f"request: reviewing request #{pending.pk} needs READ permission on its registered model; "
        "you have NO_PERMISSIONS"
    )
    with pytest.raises(CommandError, match="permission"):
        call_command("review_promotion", pending.pk, "--as", blind.username, "--approve")
    page = _page(reading, "request-detail", pending.pk)
    assert page.status_code == 200 and 'id="review-form"' in page.content.decode()
    registry_services.review_promotion(actor=reading, request=pending, decision="approve")
    pending.refresh_from_db()
    assert pending.status == PromotionRequest.Status.APPROVED


def test_a_reviewer_who_cannot_read_the_evidence_gets_no_review_form_and_is_refused(world, pending):
    """Reading the model is not enough: nobody approves a run they cannot look at."""
    model_only = _reviewer("model-only-reviewer")
    set_model_permission(actor=world.user("owner"), model=world.model, grantee=model_only, level=Level.READ)
    model_only.__dict__.pop("_labledger_levels", None)
    page = _page(model_only, "request-detail", pending.pk).content.decode()
    assert 'id="review-form"' not in page and "its evidence, was logged" in page
    assert list(selectors.review_queue_for(user=model_only)) == []
    assert selectors.pending_review_count(user=model_only) == 0
    with pytest.raises(PermissionDenied, match="needs READ on the experiment where run"):
        registry_services.review_promotion(actor=model_only, request=pending, decision="approve")
    pending.refresh_from_db()
    assert (pending.status, pending.reviews.count()) == (PromotionRequest.Status.PENDING, 0)


def test_the_navigation_badge_counts_only_readable_requests(world, pending, readers):
    assert 'id="review-badge"' in _page(readers["reading"], "registry").content.decode()
    assert 'id="review-badge"' not in _page(readers["blind"], "registry").content.decode()


def test_manage_on_the_model_is_no_review(world, pending):
    owner = world.user("owner")  # MANAGE, and the requester
    with pytest.raises(PermissionDenied, match="cannot review their own request"):
        registry_services.review_promotion(actor=owner, request=pending, decision="approve")
    manager = UserFactory(username="manager")
    assign_role(user=manager, role=Role.CONTRIBUTOR)
    set_model_permission(actor=owner, model=world.model, grantee=manager, level=Level.MANAGE)
    manager.__dict__.pop("_labledger_levels", None)
    with pytest.raises(PermissionDenied, match="needs the reviewer role"):
        registry_services.review_promotion(actor=manager, request=pending, decision="approve")


def test_a_requester_who_lost_read_can_no_longer_withdraw(world):
    editor = world.user("editor")
    opened = registry_services.request_promotion(
        actor=editor, version=world.version, label=Label.alias("production"), justification="mine"
    )
    set_model_permission(
        actor=world.user("owner"), model=world.model, grantee=editor, level=Level.NO_PERMISSIONS
    )
    editor.__dict__.pop("_labledger_levels", None)
    with pytest.raises(PermissionDenied, match="Withdrawing a promotion request needs READ"):
        registry_services.withdraw_promotion(actor=editor, request=opened)
