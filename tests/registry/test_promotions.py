"""The review workflow through the services: N-of-M approvals moving the alias, separation of
duties, superseding and closing, break-glass, policies, and protected labels on every direct path."""

from __future__ import annotations

import pytest
from django.test import override_settings

from audit.models import AuditCheckpoint, AuditEvent
from config.exceptions import Conflict, InvalidInput, PermissionDenied
from registry.models import AliasHistory, Label, ModelAlias, PromotionPolicy, PromotionRequest, Stage
from registry.selectors import (
    can_review,
    get_version_by_alias,
    pending_review_count,
    policy_for,
    review_queue_for,
)
from registry.services import (
    ProtectedLabelHeld,
    create_model_version,
    create_registered_model,
    delete_alias,
    delete_model_version,
    delete_registered_model,
    force_move,
    request_promotion,
    review_promotion,
    set_alias,
    set_promotion_policy,
    transition_stage,
    withdraw_promotion,
)
from tests.factories import RunFactory
from tracker.services import delete_experiment, delete_run, restore_run

pytestmark = pytest.mark.django_db

PRODUCTION = Label.alias("production")
PROTECTED = (
    "'production' is a protected alias of registered model 'digits': it moves only through an approved "
    "promotion request; open one with POST /api/v1/promotion-requests or from the version's page"
)


def _holder(model):
    return get_version_by_alias(model=model, alias="production").version


def test_one_approval_moves_the_alias_and_records_the_request_and_previous_holder(
    admin, requester, reviewer, protected_model, trained_versions
):
    v1, v2, _ = trained_versions
    force_move(actor=admin, model=protected_model, label=PRODUCTION, version=v1, reason="first deploy")
    request = request_promotion(actor=requester, version=v2, label=PRODUCTION, justification="F1 +2%")
    assert request.previous_version == v1

    review_promotion(actor=reviewer, request=request, decision="approve", comment="checked the curves")

    request.refresh_from_db()
    assert (request.status, _holder(protected_model)) == (PromotionRequest.Status.APPROVED, 2)
    assert request.applied_at == request.decided_at is not None
    old, new = AliasHistory.objects.filter(name="production").order_by("assigned_at", "pk")
    assert (old.version, old.removed_by, old.removed_at) == (v1, reviewer, new.assigned_at)
    assert (new.version, new.assigned_by, new.request) == (v2, reviewer, request)
    applied = AuditEvent.objects.get(action="promotion.applied")
    assert applied.object_id == f"id:{v2.pk}"
    assert applied.after == {
        "model": "digits",
        "version": 2,
        "request": request.pk,
        "label_kind": "alias",
        "label": "production",
        "replaced_version": 1,
        "approvals": 1,
    }


def test_two_approvals_are_needed_when_the_policy_says_two(
    admin, requester, reviewer, second_reviewer, protected_model, open_request
):
    set_promotion_policy(actor=admin, model=protected_model, required_approvals=2)

    review_promotion(actor=reviewer, request=open_request, decision="approve")
    open_request.refresh_from_db()
    assert open_request.status == PromotionRequest.Status.PENDING
    assert not ModelAlias.objects.exists()

    review_promotion(actor=second_reviewer, request=open_request, decision="approve", comment="agreed")
    open_request.refresh_from_db()
    assert open_request.status == PromotionRequest.Status.APPROVED
    assert _holder(protected_model) == 2
    assert list(open_request.reviews.values_list("reviewer__username", "decision")) == [
        ("rob-reviewer", "approve"),
        ("rhea-reviewer", "approve"),
    ]


def test_a_reviewer_counts_once(admin, reviewer, protected_model, open_request):
    set_promotion_policy(actor=admin, model=protected_model, required_approvals=2)
    review_promotion(actor=reviewer, request=open_request, decision="approve")
    with pytest.raises(Conflict) as error:
        review_promotion(actor=reviewer, request=open_request, decision="approve")
    assert str(error.value) == f"request: rob-reviewer has already reviewed request #{open_request.pk}"
    assert open_request.reviews.count() == 1


def test_one_rejection_closes_the_request_even_after_an_approval(
    admin, reviewer, second_reviewer, protected_model, open_request
):
    set_promotion_policy(actor=admin, model=protected_model, required_approvals=2)
    review_promotion(actor=reviewer, request=open_request, decision="approve")
    review_promotion(actor=second_reviewer, request=open_request, decision="reject", comment="data leak")
    open_request.refresh_from_db()
    assert open_request.status == PromotionRequest.Status.REJECTED
    assert not ModelAlias.objects.exists()
    event = AuditEvent.objects.get(action="promotion.rejected")
    assert (event.actor, event.after["comment"], event.after["status"]) == (
        second_reviewer,
        "data leak",
        "rejected",
    )


def test_applying_a_request_supersedes_the_others_for_the_same_alias_only(
    requester, contributor, reviewer, trained_versions, open_request
):
    rival = request_promotion(
        actor=contributor, version=trained_versions[2], label=PRODUCTION, justification="v3"
    )
    other_label = request_promotion(
        actor=contributor, version=trained_versions[2], label=Label.stage("Production"), justification="stage"
    )
    review_promotion(actor=reviewer, request=open_request, decision="approve")
    rival.refresh_from_db()
    other_label.refresh_from_db()
    assert (rival.status, rival.closed_reason) == ("superseded", f"superseded by request #{open_request.pk}")
    assert other_label.status == "pending"


def test_deleting_a_version_closes_its_pending_requests(contributor, trained_versions, open_request):
    delete_model_version(actor=contributor, version=trained_versions[1])
    open_request.refresh_from_db()
    assert (open_request.status, open_request.closed_reason) == ("closed", "version 2 was deleted")
    assert AuditEvent.objects.filter(action="promotion.closed", after__request=open_request.pk).exists()


def test_the_production_stage_moves_through_a_request_and_archives_the_old_holder(
    admin, requester, reviewer, protected_model, trained_versions
):
    v1, v2, _ = trained_versions
    force_move(
        actor=admin, model=protected_model, label=Label.stage("production"), version=v1, reason="bootstrap"
    )
    request = request_promotion(
        actor=requester, version=v2, label=Label.stage("Production"), justification="x"
    )
    assert request.previous_version == v1
    review_promotion(actor=reviewer, request=request, decision="approve")
    v1.refresh_from_db()
    v2.refresh_from_db()
    assert (v1.stage, v2.stage) == (Stage.ARCHIVED, Stage.PRODUCTION)


# Break-glass ---------------------------------------------------------------------------------


def test_an_admin_forces_a_move_with_a_reason_and_it_is_recorded_as_forced(
    admin, protected_model, open_request
):
    forced = force_move(
        actor=admin,
        model=protected_model,
        label=PRODUCTION,
        version=open_request.version,
        reason="incident 42",
    )
    assert (forced.forced, forced.forced_reason, forced.status) == (True, "incident 42", "approved")
    holding = AliasHistory.objects.get(name="production")
    assert (holding.request, holding.assigned_by) == (forced, admin)
    event = AuditEvent.objects.get(action="promotion.forced")
    assert (event.actor, event.after["reason"]) == (admin, "incident 42")
    assert AuditEvent.objects.get(action="model_alias.set").after["forced"] is True
    open_request.refresh_from_db()
    assert open_request.status == "superseded"


@pytest.mark.parametrize(
    ("who", "reason", "error_class", "message"),
    [
        ("reviewer", "incident", PermissionDenied, "Forcing a promotion needs the admin role."),
        ("admin", "  ", InvalidInput, "reason: a forced move needs a reason"),
    ],
)
def test_a_forced_move_needs_an_admin_and_a_reason(
    who, reason, error_class, message, admin, reviewer, protected_model, trained_versions
):
    actor = {"admin": admin, "reviewer": reviewer}[who]
    with pytest.raises(error_class) as error:
        force_move(
            actor=actor, model=protected_model, label=PRODUCTION, version=trained_versions[0], reason=reason
        )
    assert str(error.value) == message
    assert not ModelAlias.objects.exists()


def test_a_forced_move_is_for_protected_labels_only(admin, protected_model, trained_versions):
    for label in (Label.alias("staging"), Label.stage("Archived")):
        with pytest.raises(InvalidInput) as error:
            force_move(
                actor=admin, model=protected_model, label=label, version=trained_versions[0], reason="x"
            )
        assert error.value.field == label.kind and "is not protected: move it directly" in str(error.value)
    assert not PromotionRequest.objects.exists()


def test_a_forced_request_is_decided_and_applied_when_it_is_made(admin, protected_model, trained_versions):
    forced = force_move(
        actor=admin, model=protected_model, label=PRODUCTION, version=trained_versions[0], reason="incident"
    )
    forced.refresh_from_db()
    assert forced.created_at == forced.decided_at == forced.applied_at


# Protected labels on every direct path ---------------------------------------------------------


@pytest.mark.parametrize("who", ["contributor", "reviewer", "admin"])
def test_nobody_moves_a_protected_alias_directly(
    who, contributor, reviewer, admin, protected_model, trained_versions
):
    actor = {"contributor": contributor, "reviewer": reviewer, "admin": admin}[who]
    with pytest.raises(PermissionDenied) as error:
        set_alias(actor=actor, model=protected_model, alias="production", version=trained_versions[0])
    assert str(error.value) == f"alias: {PROTECTED}"
    assert not ModelAlias.objects.exists()


@pytest.mark.parametrize("lookalike", ["Production", "PRODUCTION", "producTion"])
def test_an_alias_differing_from_a_protected_one_only_in_case_is_refused(
    lookalike, contributor, admin, protected_model, trained_versions
):
    with pytest.raises(InvalidInput) as error:
        set_alias(actor=contributor, model=protected_model, alias=lookalike, version=trained_versions[0])
    assert error.value.field == "alias"
    assert f"{lookalike!r} differs from the protected alias 'production' only in case" in str(error.value)
    assert not ModelAlias.objects.exists()
    set_alias(
        actor=contributor, model=protected_model, alias="production-candidate", version=trained_versions[0]
    )
    # One set before the policy protected its name may still be removed.
    set_promotion_policy(actor=admin, model=protected_model, protected_aliases=["production", "champion"])
    ModelAlias.objects.create(model=protected_model, alias="Champion", version=trained_versions[0])
    delete_alias(actor=contributor, model=protected_model, alias="Champion")
    assert list(ModelAlias.objects.values_list("alias", flat=True)) == ["production-candidate"]


def test_a_protected_alias_cannot_be_removed_directly(admin, contributor, protected_model, trained_versions):
    force_move(
        actor=admin, model=protected_model, label=PRODUCTION, version=trained_versions[0], reason="setup"
    )
    with pytest.raises(PermissionDenied) as error:
        delete_alias(actor=contributor, model=protected_model, alias="production")
    assert str(error.value) == f"alias: {PROTECTED}"
    assert _holder(protected_model) == 1


def test_the_production_stage_is_protected_in_and_out(admin, contributor, protected_model, trained_versions):
    v1, v2, _ = trained_versions
    message = PROTECTED.replace("'production' is a protected alias", "'Production' is a protected stage")
    with pytest.raises(PermissionDenied) as error:
        transition_stage(actor=contributor, version=v2, stage="production")
    assert str(error.value) == f"stage: {message}"
    force_move(
        actor=admin, model=protected_model, label=Label.stage("Production"), version=v1, reason="setup"
    )
    with pytest.raises(PermissionDenied) as leaving:
        transition_stage(actor=contributor, version=v1, stage="Archived")
    # It names the stage the version leaves, not the one it would go to (which is not protected).
    assert str(leaving.value) == (
        "stage: version 1 holds 'Production', a protected stage of registered model 'digits': it leaves "
        "it when an approved promotion request moves another version there, or by an admin's forced move"
    )


def test_unprotected_aliases_and_stages_still_move_directly_and_audited(
    contributor, protected_model, trained_versions
):
    set_alias(actor=contributor, model=protected_model, alias="staging", version=trained_versions[0])
    transition_stage(actor=contributor, version=trained_versions[0], stage="Staging")
    assert get_version_by_alias(model=protected_model, alias="staging") == trained_versions[0]
    actions = AuditEvent.objects.filter(actor=contributor).values_list("action", flat=True)
    assert list(actions)[-2:] == ["model_alias.set", "model_version.stage_changed"]


def test_models_without_a_policy_protect_production_by_default(contributor, experiment, run):
    model = create_registered_model(actor=contributor, name="plain")
    policy = policy_for(model=model)
    assert (policy.pk, policy.protected_aliases, policy.required_approvals, policy.review_role) == (
        None,
        ["production"],
        1,
        "reviewer",
    )


@override_settings(REGISTRY_PROTECTED_ALIASES=["prod", "canary"], REGISTRY_REQUIRED_APPROVALS=3)
def test_the_default_policy_comes_from_settings(contributor):
    policy = policy_for(model=create_registered_model(actor=contributor, name="plain"))
    assert (policy.protected_aliases, policy.required_approvals) == (["prod", "canary"], 3)
    assert not policy.protects(Label.stage("Production"))


# Deleting what holds a protected label ---------------------------------------------------------


def test_a_version_holding_a_protected_alias_cannot_be_deleted(
    admin, contributor, protected_model, trained_versions
):
    force_move(
        actor=admin, model=protected_model, label=PRODUCTION, version=trained_versions[0], reason="setup"
    )
    with pytest.raises(ProtectedLabelHeld) as error:
        delete_model_version(actor=contributor, version=trained_versions[0])
    assert error.value.http_status == 409
    assert str(error.value) == (
        "version: version 1 of registered model 'digits' cannot be deleted: "
        "the protected alias 'production' points at version 1"
    )
    with pytest.raises(ProtectedLabelHeld) as model_error:
        delete_registered_model(actor=admin, model=protected_model)
    assert str(model_error.value) == (
        "name: registered model 'digits' cannot be deleted: "
        "the protected alias 'production' points at version 1"
    )
    assert protected_model.versions.count() == 3


# Policies ------------------------------------------------------------------------------------


def test_only_admins_change_a_policy_and_every_change_is_audited(admin, reviewer, protected_model):
    with pytest.raises(PermissionDenied) as error:
        set_promotion_policy(actor=reviewer, model=protected_model, required_approvals=3)
    assert str(error.value) == "Changing a promotion policy needs the admin role."

    set_promotion_policy(
        actor=admin,
        model=protected_model,
        protected_aliases=["production", "canary"],
        required_approvals=2,
        key_metrics=[{"key": "val_f1", "goal": "max"}, {"key": "val_loss", "goal": "min"}],
    )
    policy = PromotionPolicy.objects.get(model=protected_model)
    assert (policy.protected_aliases, policy.required_approvals, policy.updated_by) == (
        ["production", "canary"],
        2,
        admin,
    )
    last = AuditEvent.objects.filter(action="promotion_policy.set").last()
    assert last.before["required_approvals"] == 1
    assert last.after["required_approvals"] == 2
    assert last.after["key_metrics"] == [{"key": "val_f1", "goal": "max"}, {"key": "val_loss", "goal": "min"}]


def test_a_policy_change_that_changes_nothing_writes_nothing(admin, protected_model):
    events = AuditEvent.objects.count()
    set_promotion_policy(
        actor=admin, model=protected_model, protected_aliases=["production"], required_approvals=1
    )
    assert AuditEvent.objects.count() == events


def test_the_first_policy_of_a_model_records_the_default_it_replaces(admin, contributor):
    model = create_registered_model(actor=contributor, name="fresh")
    default = policy_for(model=model)
    set_promotion_policy(actor=admin, model=model, required_approvals=2)
    event = AuditEvent.objects.filter(action="promotion_policy.set").last()
    assert event.before["required_approvals"] == 1 and event.after["required_approvals"] == 2
    assert event.before["protected_aliases"] == default.protected_aliases


def test_lowering_the_approvals_needed_applies_requests_that_now_have_enough(
    admin, requester, reviewer, protected_model, trained_versions
):
    """Otherwise they stay pending for ever: their reviewers have already approved."""
    set_promotion_policy(actor=admin, model=protected_model, required_approvals=2)
    v1, v2, v3 = trained_versions
    first = request_promotion(actor=requester, version=v2, label=PRODUCTION, justification="F1 +2%")
    second = request_promotion(actor=requester, version=v3, label=PRODUCTION, justification="F1 +3%")
    untouched = request_promotion(
        actor=requester, version=v1, label=Label.stage("Production"), justification="x"
    )
    review_promotion(actor=reviewer, request=first, decision="approve")
    review_promotion(actor=reviewer, request=second, decision="approve")

    set_promotion_policy(actor=admin, model=protected_model, required_approvals=1)

    for request in (first, second, untouched):
        request.refresh_from_db()
    assert (first.status, second.status, untouched.status) == ("approved", "superseded", "pending")
    assert _holder(protected_model) == 2
    applied = AuditEvent.objects.get(action="promotion.applied")
    assert (applied.actor, applied.after["approvals"], applied.after["because"]) == (
        admin, 1, "the policy now requires 1 approval"
    )  # fmt: skip


def test_a_source_run_deleted_with_its_experiment_names_the_experiment_to_restore(
    admin, requester, reviewer, open_request
):
    """Restoring such a run alone is refused, so the advice is the experiment."""
    experiment = open_request.version.run.experiment
    delete_experiment(actor=admin, experiment=experiment)
    advice = f"is deleted: restore experiment {experiment.pk} before the request is reviewed"
    with pytest.raises(Conflict, match=advice):
        review_promotion(actor=reviewer, request=open_request, decision="approve")


def test_a_version_whose_source_run_is_deleted_is_neither_requested_nor_reviewed(
    admin, requester, reviewer, open_request, trained_versions
):
    """The run is the evidence; its deletion stops the promotion until it is restored."""
    assert list(review_queue_for(user=reviewer)) == [open_request]
    delete_run(actor=admin, run=open_request.version.run)
    with pytest.raises(Conflict, match="is deleted: restore it before the request is reviewed"):
        review_promotion(actor=reviewer, request=open_request, decision="approve")
    assert list(review_queue_for(user=reviewer)) == []  # nor waits in the queue
    third = trained_versions[2]
    delete_run(actor=admin, run=third.run)
    with pytest.raises(Conflict, match="is deleted: restore it before asking to promote the version"):
        request_promotion(actor=requester, version=third, label=PRODUCTION, justification="x")
    restore_run(actor=admin, run=open_request.version.run)
    review_promotion(actor=reviewer, request=open_request, decision="approve")
    open_request.refresh_from_db()
    assert open_request.status == PromotionRequest.Status.APPROVED


def test_lowering_the_approvals_leaves_a_request_whose_source_run_is_deleted_pending(
    admin, reviewer, open_request
):
    set_promotion_policy(actor=admin, model=open_request.model, required_approvals=2)
    review_promotion(actor=reviewer, request=open_request, decision="approve")
    delete_run(actor=admin, run=open_request.version.run)
    set_promotion_policy(actor=admin, model=open_request.model, required_approvals=1)
    open_request.refresh_from_db()
    assert open_request.status == "pending" and not ModelAlias.objects.exists()


def test_the_approval_that_completes_a_request_records_it_approved(requester, reviewer, open_request):
    review_promotion(actor=reviewer, request=open_request, decision="approve")
    assert AuditEvent.objects.get(action="promotion.approved").after["status"] == "approved"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"required_approvals": 0}, "required_approvals: must be a whole number from 1 to 20, got 0"),
        ({"required_approvals": True}, "required_approvals: must be a whole number from 1 to 20, got True"),
        ({"protected_aliases": "production"}, "protected_aliases: must be a list of alias names"),
        ({"protected_aliases": ["ok", "no way"]},
         "protected_aliases[1]: 'no way' may only contain letters, digits, '_' and '-'"),
        ({"review_role": "anyone"}, "review_role: 'anyone' is not one of reviewer, admin"),
        ({"key_metrics": [{"key": "f1"}]}, "key_metrics[0]: must be an object with exactly 'key' and 'goal'"),
        ({"key_metrics": [{"key": "f1", "goal": "up"}]}, "key_metrics[0].goal: 'up' is not one of max, min"),
        ({"key_metrics": [{"key": "f1", "goal": "max"}, {"key": "f1", "goal": "min"}]},
         "key_metrics[1].key: 'f1' is given more than once"),
        ({"protected_aliases": ["production", "Production"]},
         "protected_aliases[1]: 'Production' differs from 'production' only in case; protect one of them"),
    ],
)  # fmt: skip
def test_bad_policies_are_refused_naming_the_field(admin, protected_model, changes, message):
    before = AuditEvent.objects.count()
    with pytest.raises(InvalidInput) as error:
        set_promotion_policy(actor=admin, model=protected_model, **changes)
    assert str(error.value) == message
    assert AuditEvent.objects.count() == before
    assert PromotionPolicy.objects.get(model=protected_model).required_approvals == 1


# Who reviews what ----------------------------------------------------------------------------


def test_the_review_queue_is_oldest_first_and_leaves_out_what_the_user_may_not_review(
    requester, contributor, reviewer, second_reviewer, admin, protected_model, trained_versions, open_request
):
    set_promotion_policy(actor=admin, model=protected_model, required_approvals=2)
    later = request_promotion(
        actor=reviewer, version=trained_versions[2], label=PRODUCTION, justification="mine, as a reviewer"
    )
    review_promotion(actor=second_reviewer, request=open_request, decision="approve")

    assert list(review_queue_for(user=second_reviewer)) == [later]  # reviewed the first already
    assert list(review_queue_for(user=reviewer)) == [open_request]  # opened the second itself
    assert [r.pk for r in review_queue_for(user=admin)] == [open_request.pk, later.pk]
    assert review_queue_for(user=admin)[0].approvals == 1
    assert pending_review_count(user=requester) == 0  # a contributor reviews nothing
    assert pending_review_count(user=admin) == 2


def test_can_review_says_why_not(requester, reviewer, contributor, open_request):
    assert can_review(user=reviewer, request=open_request).allowed
    verdict = can_review(user=contributor, request=open_request)
    assert not verdict.allowed
    assert verdict.reason == (
        f"carl-contributor created run {open_request.version.run.uuid}, the source of version 2, "
        "and cannot review its promotion"
    )


def test_withdrawing_is_audited(requester, open_request):
    withdraw_promotion(actor=requester, request=open_request)
    event = AuditEvent.objects.get(action="promotion.withdrawn")
    assert (event.actor, event.after) == (
        requester,
        {"model": "digits", "version": 2, "request": open_request.pk},
    )


def test_an_applied_promotion_is_followed_by_a_signed_checkpoint(
    reviewer, open_request, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        review_promotion(actor=reviewer, request=open_request, decision="approve")
    assert len(callbacks) == 1
    checkpoint = AuditCheckpoint.objects.get()
    assert (
        checkpoint.sequence == AuditEvent.objects.order_by("-sequence").values_list("sequence", flat=True)[0]
    )


def test_a_rejection_makes_no_checkpoint(reviewer, open_request, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        review_promotion(actor=reviewer, request=open_request, decision="reject", comment="no")
    assert callbacks == []


def test_a_request_for_a_run_without_a_user_is_in_every_reviewers_queue(
    contributor, requester, reviewer, experiment, protected_model
):
    """Runs logged without a user (older clients) have no author to exclude."""
    anonymous_run = RunFactory(experiment=experiment, user=None)
    version = create_model_version(actor=contributor, model=protected_model, run=anonymous_run)
    request = request_promotion(actor=requester, version=version, label=PRODUCTION, justification="no author")
    assert list(review_queue_for(user=reviewer)) == [request]
    assert can_review(user=reviewer, request=request).allowed
