"""Reviews arriving at the same moment on real PostgreSQL: the model and request row locks give
exactly one move of the alias, whatever the interleaving."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections

from accounts.roles import Role
from accounts.services import assign_role
from audit.models import AuditEvent
from audit.verification import verify_chain
from config.exceptions import ApplicationError
from registry.models import AliasHistory, Label, PromotionRequest
from registry.services import (
    create_model_version,
    create_registered_model,
    request_promotion,
    review_promotion,
    set_promotion_policy,
    withdraw_promotion,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.services

ROUNDS = 4


@pytest.fixture
def reviewers(postgres):
    users = [UserFactory(username=f"reviewer-{i}") for i in range(2)]
    for user in users:
        assign_role(user=user, role=Role.REVIEWER)
    return users


def _at_once(*calls):
    """Run each call in its own thread and connection, released together by a barrier; returns
    each call's result or the ApplicationError it raised."""
    barrier = threading.Barrier(len(calls))

    def run(call):
        try:
            barrier.wait(timeout=10)
            return call()
        except ApplicationError as error:
            return error
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def _requests(contributor, requester, admin, run, approvals: int):
    """One request per round, each opened once the previous round is decided (an applied request
    supersedes the others pending for its alias)."""
    model = create_registered_model(actor=contributor, name=f"concurrent-{approvals}")
    set_promotion_policy(actor=admin, model=model, required_approvals=approvals)
    for _ in range(ROUNDS):
        version = create_model_version(actor=contributor, model=model, run=run)
        yield request_promotion(
            actor=requester, version=version, label=Label.alias("production"), justification="x"
        )


def _approve(reviewer, request):
    return lambda: review_promotion(actor=reviewer, request=request, decision="approve")


def test_two_reviewers_approving_a_one_approval_request_at_once_move_the_alias_once(
    postgres, contributor, requester, admin, run, reviewers
):
    for request in _requests(contributor, requester, admin, run, approvals=1):
        outcomes = _at_once(*(_approve(reviewer, request) for reviewer in reviewers))
        errors = [str(o) for o in outcomes if isinstance(o, ApplicationError)]
        assert errors == [f"request: request #{request.pk} is already approved"]
        assert AliasHistory.objects.filter(request=request).count() == 1
        assert AuditEvent.objects.filter(action="promotion.applied", after__request=request.pk).count() == 1
        assert request.reviews.count() == 1
    assert verify_chain().broken is None


def test_the_last_two_of_two_approvals_arriving_together_move_the_alias_exactly_once(
    postgres, contributor, requester, admin, run, reviewers
):
    for request in _requests(contributor, requester, admin, run, approvals=2):
        outcomes = _at_once(*(_approve(reviewer, request) for reviewer in reviewers))
        assert not [o for o in outcomes if isinstance(o, ApplicationError)]
        request.refresh_from_db()
        assert request.status == PromotionRequest.Status.APPROVED
        assert AliasHistory.objects.filter(request=request).count() == 1
        assert AuditEvent.objects.filter(action="promotion.applied", after__request=request.pk).count() == 1
    holders = AliasHistory.objects.filter(name="production", removed_at__isnull=True)
    assert [h.version.version for h in holders] == [ROUNDS]
    assert verify_chain().broken is None


def test_an_approval_and_a_withdrawal_at_once_leave_one_of_them(
    postgres, contributor, requester, admin, run, reviewers
):
    for request in _requests(contributor, requester, admin, run, approvals=1):
        approved, withdrawn = _at_once(
            _approve(reviewers[0], request),
            lambda request=request: withdraw_promotion(actor=requester, request=request),
        )
        request.refresh_from_db()
        losers = [o for o in (approved, withdrawn) if isinstance(o, ApplicationError)]
        assert len(losers) == 1
        assert str(losers[0]) == f"request: request #{request.pk} is already {request.status}"
        assert AliasHistory.objects.filter(request=request).count() == (request.status == "approved")
