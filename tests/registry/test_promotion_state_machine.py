"""The promotion request's state machine as a table: from every state, every action, by whom,
and what it leads to, or the exact error that refuses it."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from config.exceptions import AlreadyExists, Conflict, InvalidInput, NotFound, PermissionDenied
from registry.models import Label, PromotionRequest
from registry.selectors import get_version_by_alias
from registry.services import (
    ProtectedLabelHeld,
    delete_model_version,
    request_promotion,
    review_promotion,
    set_promotion_policy,
    withdraw_promotion,
)

pytestmark = pytest.mark.django_db

PRODUCTION = Label.alias("production")


def _into_state(state, *, request, requester, reviewer, contributor, versions):
    """Bring `request` (version 2 → production, by rita) into `state` through the services."""
    if state == "approved":
        review_promotion(actor=reviewer, request=request, decision="approve", comment="ok")
    elif state == "rejected":
        review_promotion(actor=reviewer, request=request, decision="reject", comment="overfits")
    elif state == "withdrawn":
        withdraw_promotion(actor=requester, request=request)
    elif state == "superseded":
        rival = request_promotion(actor=requester, version=versions[2], label=PRODUCTION, justification="v3")
        review_promotion(actor=reviewer, request=rival, decision="approve")
    elif state == "closed":
        delete_model_version(actor=contributor, version=versions[1])
    request.refresh_from_db()
    assert request.status == state


ACTIONS = {
    "approve": lambda who, request: review_promotion(actor=who, request=request, decision="approve"),
    "reject": lambda who, request: review_promotion(
        actor=who, request=request, decision="reject", comment="no"
    ),
    "reject without a comment": lambda who, request: review_promotion(
        actor=who, request=request, decision="reject"
    ),
    "withdraw": lambda who, request: withdraw_promotion(actor=who, request=request),
    "apply another request for the alias": lambda who, request: review_promotion(
        actor=User.objects.get(username="rob-reviewer"),
        request=request_promotion(
            actor=who, version=request.model.versions.get(version=1), label=PRODUCTION, justification="v1"
        ),
        decision="approve",
    ),
    "delete its version": lambda who, request: delete_model_version(actor=who, version=request.version),
}

# (state, action, by, resulting state, or (error class, message with {id}))
TABLE = [
    ("pending", "approve", "reviewer", "approved"),
    ("pending", "reject", "reviewer", "rejected"),
    ("pending", "withdraw", "requester", "withdrawn"),
    ("pending", "reject without a comment", "reviewer",
     (InvalidInput, "comment: a rejection needs a comment saying why")),
    ("pending", "approve", "requester",
     (PermissionDenied, "request: request #{id} was opened by rita-requester, "
                        "who cannot review their own request")),
    ("pending", "approve", "run author",
     (PermissionDenied, "request: carl-contributor created run {run}, the source of version 2, "
                        "and cannot review its promotion")),
    ("pending", "reject", "run author",
     (PermissionDenied, "request: carl-contributor created run {run}, the source of version 2, "
                        "and cannot review its promotion")),
    ("pending", "approve", "viewer",
     (PermissionDenied, "request: reviewing promotions of registered model 'digits' "
                        "needs the reviewer role")),
    ("pending", "withdraw", "reviewer",
     (PermissionDenied, "request: only rita-requester, who opened request #{id}, can withdraw it")),
    *[
        (state, action, by, (Conflict, f"request: request #{{id}} is already {state}"))
        for state in ("approved", "rejected", "withdrawn", "superseded", "closed")
        for action, by in (("approve", "reviewer"), ("reject", "reviewer"), ("withdraw", "requester"))
    ],
    # What other requests and deletions do to this one: only a pending request ends.
    ("pending", "apply another request for the alias", "requester", "superseded"),
    *[(state, "apply another request for the alias", "requester", state)
      for state in ("approved", "rejected", "withdrawn", "superseded", "closed")],
    ("pending", "delete its version", "run author", "closed"),
    ("approved", "delete its version", "run author",
     (ProtectedLabelHeld, "version: version 2 of registered model 'digits' cannot be deleted: "
                          "the protected alias 'production' points at version 2")),
    *[(state, "delete its version", "run author", state)
      for state in ("rejected", "withdrawn", "superseded")],
    ("closed", "delete its version", "run author",
     (NotFound, "version: version 2 of registered model 'digits' is deleted")),
]  # fmt: skip


@pytest.mark.parametrize(
    ("state", "action", "by", "outcome"), TABLE, ids=lambda v: v if isinstance(v, str) else ""
)
def test_each_transition_is_allowed_or_refused_with_its_error(
    state, action, by, outcome, open_request, requester, reviewer, second_reviewer, contributor, viewer,
    trained_versions,
):  # fmt: skip
    actors = {"requester": requester, "reviewer": reviewer, "run author": contributor, "viewer": viewer}
    acting = (
        second_reviewer
        if by == "reviewer" and state in ("approved", "rejected", "superseded")
        else actors[by]
    )
    _into_state(state, request=open_request, requester=requester, reviewer=reviewer, contributor=contributor,
                versions=trained_versions)  # fmt: skip

    if isinstance(outcome, str):
        ACTIONS[action](acting, open_request)
        open_request.refresh_from_db()
        assert open_request.status == outcome
    else:
        error_class, message = outcome
        with pytest.raises(error_class) as error:
            ACTIONS[action](acting, open_request)
        run = trained_versions[1].run.uuid
        assert str(error.value) == message.format(id=open_request.pk, run=run)
        open_request.refresh_from_db()
        assert open_request.status == state


@pytest.mark.parametrize(
    ("label", "justification", "error_class", "message"),
    [
        (Label.alias("staging"), "why", InvalidInput,
         "alias: alias 'staging' of registered model 'digits' is not protected: move it directly"),
        (Label.alias("prod env"), "why", InvalidInput,
         "alias: 'prod env' may only contain letters, digits, '_' and '-'"),
        (Label.stage("Live"), "why", InvalidInput,
         "stage: 'Live' is not one of None, Staging, Production, Archived"),
        (Label("tag", "x"), "why", InvalidInput, "label_kind: 'tag' is not one of alias, stage"),
        (PRODUCTION, "   ", InvalidInput, "justification: say why this version should be promoted"),
        (PRODUCTION, "x" * 5001, InvalidInput, "justification: is 5001 characters long; the limit is 5000"),
    ],
)  # fmt: skip
def test_opening_a_request_refuses_bad_input(
    requester, trained_versions, label, justification, error_class, message
):
    with pytest.raises(error_class) as error:
        request_promotion(
            actor=requester, version=trained_versions[1], label=label, justification=justification
        )
    assert str(error.value) == message
    assert not PromotionRequest.objects.exists()


def test_a_second_pending_request_for_the_same_version_and_label_is_refused(requester, open_request):
    with pytest.raises(AlreadyExists) as error:
        request_promotion(
            actor=requester, version=open_request.version, label=PRODUCTION, justification="again"
        )
    assert (
        str(error.value)
        == f"version: request #{open_request.pk} already asks to move alias 'production' to version 2"
    )


def test_a_version_cannot_be_requested_for_a_label_it_already_holds(requester, reviewer, open_request):
    review_promotion(actor=reviewer, request=open_request, decision="approve")
    with pytest.raises(Conflict) as error:
        request_promotion(
            actor=requester, version=open_request.version, label=PRODUCTION, justification="again"
        )
    assert str(error.value) == "version: version 2 already holds alias 'production'"


def test_a_viewer_cannot_open_a_request(viewer, trained_versions):
    with pytest.raises(PermissionDenied) as error:
        request_promotion(actor=viewer, version=trained_versions[0], label=PRODUCTION, justification="x")
    assert str(error.value) == "Requesting a promotion needs the contributor role."


def test_an_admin_only_policy_refuses_reviewers(admin, reviewer, open_request, protected_model):
    set_promotion_policy(actor=admin, model=protected_model, review_role="admin")
    with pytest.raises(PermissionDenied) as error:
        review_promotion(actor=reviewer, request=open_request, decision="approve")
    assert (
        str(error.value) == "request: reviewing promotions of registered model 'digits' needs the admin role"
    )
    review_promotion(actor=admin, request=open_request, decision="approve")
    assert get_version_by_alias(model=protected_model, alias="production") == open_request.version
