"""The review workflow: a request to move a protected label, reviews that approve or reject it,
and the move itself once enough reviewers approved; plus the admin's break-glass and policies.

Transitions of a request (anything else is refused with the error the table in
tests/registry/test_promotion_state_machine.py lists):

    pending --approve (approvals < required)--> pending
    pending --approve (approvals = required)--> approved  (the label moves in the same transaction)
    pending --reject (with a comment)---------> rejected
    pending --withdraw (by the requester)-----> withdrawn
    pending --another request applied---------> superseded
    pending --its version or model deleted----> closed
    (none) --force_move (admin, reason)-------> approved, forced
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from accounts.roles import Role, require_role
from audit.tasks import make_checkpoint
from config.exceptions import AlreadyExists, Conflict, InvalidInput, NotFound, PermissionDenied
from registry.models import (
    AliasHistory,
    Label,
    ModelVersion,
    PromotionPolicy,
    PromotionRequest,
    RegisteredModel,
    Review,
    ReviewRole,
    Stage,
)
from registry.permissions import Level, require_model_permission, require_version_permission
from registry.selectors import canonical_stage, label_holder, policy_for, review_refusal
from tracker.models import Lifecycle, Run
from tracker.validation import validate_key, validate_text

from .events import record_registry_event
from .labels import lock_model, move_label, validate_alias

MAX_TEXT = 5000
MAX_REQUIRED_APPROVALS = 20
MAX_KEY_METRICS = 20


def normalized_label(label: Label) -> Label:
    """An alias name checked, or a stage in MLflow's spelling ('production' → 'Production');
    errors name the field by the label's kind, as requests give it (`alias` or `stage`)."""
    if label.kind == AliasHistory.Kind.ALIAS:
        return Label.alias(validate_alias(label.name, field="alias"))
    if label.kind == AliasHistory.Kind.STAGE:
        return Label.stage(canonical_stage(label.name, field="stage"))
    raise InvalidInput(f"{label.kind!r} is not one of alias, stage", field="label_kind")


def _live_version(version: ModelVersion) -> ModelVersion:
    if version.is_deleted or version.model.is_deleted:
        raise NotFound(
            f"version {version.version} of registered model {version.model.name!r} is deleted",
            field="version",
        )
    return version


def request_promotion(
    *, actor: User, version: ModelVersion, label: Label, justification: str
) -> PromotionRequest:
    """Ask for `version` to take a protected label; reviewers decide."""
    require_version_permission(actor, version, Level.EDIT, action="Requesting a promotion")
    label = normalized_label(label)
    justification = validate_text(justification, field="justification", max_length=MAX_TEXT).strip()
    if not justification:
        raise InvalidInput("say why this version should be promoted", field="justification")
    model = _live_version(version).model
    source = Run.objects.only("uuid", "lifecycle", "experiment_id", "deleted_with_experiment").get(
        pk=version.run_id
    )  # as it is now
    if source.lifecycle != Lifecycle.ACTIVE:
        raise Conflict(
            f"run {source.uuid}, the source of version {version.version}, is deleted: "
            f"{source.how_to_restore} before asking to promote the version",
            field="version",
        )
    if not policy_for(model=model).protects(label):
        raise InvalidInput(
            f"{label} of registered model {model.name!r} is not protected: move it directly", field=label.kind
        )
    with transaction.atomic():
        lock_model(model)  # so the holder recorded below is the one reviewers will replace
        holder = label_holder(model=model, label=label)
        if holder is not None and holder.pk == version.pk:
            raise Conflict(f"version {version.version} already holds {label}", field="version")
        pending = PromotionRequest.objects.filter(
            version=version,
            label_kind=label.kind,
            label_name=label.name,
            status=PromotionRequest.Status.PENDING,
        ).first()
        if pending is not None:
            raise AlreadyExists(
                f"request #{pending.pk} already asks to move {label} to version {version.version}",
                field="version",
            )
        request = PromotionRequest.objects.create(
            model=model,
            version=version,
            label_kind=label.kind,
            label_name=label.name,
            requester=actor,
            justification=justification,
            previous_version=holder,
        )
        record_registry_event(
            actor=actor,
            action="promotion.requested",
            target=version,
            after={
                "request": request.pk,
                "label_kind": label.kind,
                "label": label.name,
                "previous_version": holder.version if holder else None,
                "justification": justification,
            },
        )
    return request


def _locked(request: PromotionRequest) -> PromotionRequest:
    """The request re-read under the model's and its own row lock: two reviewers may click at
    once, and the second must see the first's review (and a move already made). NO KEY: reviews
    point at the request row (docs/architecture.md, "Concurrency and durability")."""
    lock_model(request.model)
    return (
        PromotionRequest.objects.select_for_update(no_key=True, of=("self",))
        .select_related("model", "version", "version__model", "version__run", "requester")
        .get(pk=request.pk)
    )


def review_promotion(
    *, actor: User, request: PromotionRequest, decision: str, comment: str = ""
) -> PromotionRequest:
    """Approve or reject a request; the approval that reaches the policy's number moves the label."""
    require_role(actor, Role.VIEWER, action="Reviewing a promotion")
    if decision not in Review.Decision.values:
        raise InvalidInput(f"{decision!r} is not one of approve, reject", field="decision")
    comment = validate_text(comment, field="comment", max_length=MAX_TEXT).strip()
    if decision == Review.Decision.REJECT and not comment:
        raise InvalidInput("a rejection needs a comment saying why", field="comment")
    with transaction.atomic():
        request = _locked(request)
        refusal = review_refusal(user=actor, request=request)
        if refusal is not None:
            raise refusal
        Review.objects.create(request=request, reviewer=actor, decision=decision, comment=comment)
        now = timezone.now()
        approvals = request.reviews.filter(decision=Review.Decision.APPROVE).count()
        required = policy_for(model=request.model).required_approvals
        applies = decision == Review.Decision.APPROVE and approvals >= required
        if decision == Review.Decision.REJECT:
            request.status, request.decided_at = PromotionRequest.Status.REJECTED, now
            request.save(update_fields=["status", "decided_at"])
        record_registry_event(
            actor=actor,
            action="promotion.approved" if decision == Review.Decision.APPROVE else "promotion.rejected",
            target=request.version,
            after={
                "request": request.pk,
                "comment": comment,
                "approvals": approvals,
                "required": required,
                # What this review made of the request (the approval that completes it approves it).
                "status": PromotionRequest.Status.APPROVED if applies else request.status,
            },
        )
        if applies:
            _apply(actor=actor, request=request, now=now, approvals=approvals)
    return request


def _apply(*, actor: User, request: PromotionRequest, now: Any, approvals: int, because: str = "") -> None:
    """Move the label for an approved (or forced) request, and supersede the other requests for
    the same label: they asked to replace a holder that is no longer there."""
    model, label = request.model, request.label
    replaced = label_holder(model=model, label=label)
    request.status, request.decided_at, request.applied_at = PromotionRequest.Status.APPROVED, now, now
    request.save(update_fields=["status", "decided_at", "applied_at"])
    move_label(
        actor=actor,
        model=model,
        label=label,
        version=request.version,
        archive_existing_versions=label.kind == AliasHistory.Kind.STAGE and label.name == Stage.PRODUCTION,
        request=request,
    )
    record_registry_event(
        actor=actor,
        action="promotion.forced" if request.forced else "promotion.applied",
        target=request.version,
        after={
            "request": request.pk,
            "label_kind": label.kind,
            "label": label.name,
            "replaced_version": replaced.version if replaced else None,
            "approvals": approvals,
            **({"reason": request.forced_reason} if request.forced else {}),
            **({"because": because} if because else {}),
        },
    )
    others = (
        PromotionRequest.objects.select_for_update(no_key=True, of=("self",))
        .filter(
            model=model, label_kind=label.kind, label_name=label.name, status=PromotionRequest.Status.PENDING
        )
        .exclude(pk=request.pk)
        .select_related("version", "model")
    )
    _end_requests(actor=actor, requests=others, status=PromotionRequest.Status.SUPERSEDED,
                  reason=f"superseded by request #{request.pk}", now=now)  # fmt: skip
    # A signed checkpoint of the chain head right after every promotion, once it is committed:
    # the decision is then provable even against whoever can rewrite the database.
    transaction.on_commit(make_checkpoint.delay)


def _end_requests(
    *, actor: User, requests: Any, status: str, reason: str, now: Any
) -> list[PromotionRequest]:
    """End pending requests that can no longer be decided, each with an audit event."""
    ended = list(requests)
    for request in ended:
        request.status, request.decided_at, request.closed_reason = status, now, reason
        request.save(update_fields=["status", "decided_at", "closed_reason"])
        record_registry_event(
            actor=actor,
            action=f"promotion.{status}",
            target=request.version,
            after={"request": request.pk, "reason": reason},
        )
    return ended


def close_pending_requests(
    *, actor: User, model: RegisteredModel, version: ModelVersion | None, reason: str
) -> None:
    """Close the pending requests of a version (or of a whole model) being deleted."""
    requests = PromotionRequest.objects.filter(model=model, status=PromotionRequest.Status.PENDING)
    if version is not None:
        requests = requests.filter(version=version)
    _end_requests(
        actor=actor,
        requests=requests.select_related("version", "model"),
        status=PromotionRequest.Status.CLOSED,
        reason=reason,
        now=timezone.now(),
    )


def withdraw_promotion(*, actor: User, request: PromotionRequest) -> PromotionRequest:
    """The requester takes a pending request back."""
    require_role(actor, Role.CONTRIBUTOR, action="Withdrawing a promotion request")
    with transaction.atomic():
        request = _locked(request)
        # The requester may have lost READ on the model since: they then no longer see it at all.
        require_model_permission(
            actor,
            request.model,
            Level.READ,
            action="Withdrawing a promotion request",
            via=f"request #{request.pk}",
        )
        if request.status != PromotionRequest.Status.PENDING:
            raise Conflict(f"request #{request.pk} is already {request.status}", field="request")
        if request.requester_id != actor.pk:
            raise PermissionDenied(
                f"only {request.requester.username}, who opened request #{request.pk}, can withdraw it",
                field="request",
            )
        request.status, request.decided_at = PromotionRequest.Status.WITHDRAWN, timezone.now()
        request.save(update_fields=["status", "decided_at"])
        record_registry_event(
            actor=actor, action="promotion.withdrawn", target=request.version, after={"request": request.pk}
        )
    return request


def force_move(
    *, actor: User, model: RegisteredModel, label: Label, version: ModelVersion, reason: str
) -> PromotionRequest:
    """Break-glass: an admin moves a protected label without reviews. It is recorded as a forced
    request with its reason, so every place that shows the move shows that it was forced."""
    require_role(actor, Role.ADMIN, action="Forcing a promotion")
    label = normalized_label(label)
    reason = validate_text(reason, field="reason", max_length=MAX_TEXT).strip()
    if not reason:
        raise InvalidInput("a forced move needs a reason", field="reason")
    if version.model_id != model.pk:
        raise InvalidInput(f"version {version.version} belongs to another model", field="version")
    _live_version(version)
    with transaction.atomic():
        lock_model(model)
        if not policy_for(model=model).protects(label):
            # Break-glass is for what review guards; anything else moves directly, unmarked.
            raise InvalidInput(
                f"{label} of registered model {model.name!r} is not protected: move it directly",
                field=label.kind,
            )
        holder = label_holder(model=model, label=label)
        if holder is not None and holder.pk == version.pk:
            raise Conflict(f"version {version.version} already holds {label}", field="version")
        request = PromotionRequest.objects.create(
            model=model,
            version=version,
            label_kind=label.kind,
            label_name=label.name,
            requester=actor,
            justification=reason,
            previous_version=holder,
            forced=True,
            forced_reason=reason,
            # Never pending: a pending request for the same version and label may exist (and is
            # superseded below).
            status=PromotionRequest.Status.APPROVED,
        )
        # Decided and applied as it was made, never before it.
        _apply(actor=actor, request=request, now=request.created_at, approvals=0)
    return request


def _validated_key_metrics(key_metrics: Any) -> list[dict[str, str]]:
    if not isinstance(key_metrics, list):
        raise InvalidInput("must be a list of {key, goal}", field="key_metrics")
    if len(key_metrics) > MAX_KEY_METRICS:
        raise InvalidInput(f"at most {MAX_KEY_METRICS} key metrics", field="key_metrics")
    cleaned, seen = [], set()
    for index, item in enumerate(key_metrics):
        field = f"key_metrics[{index}]"
        if not isinstance(item, dict) or set(item) != {"key", "goal"}:
            raise InvalidInput("must be an object with exactly 'key' and 'goal'", field=field)
        key = validate_key(item["key"], field=f"{field}.key")
        if item["goal"] not in ("max", "min"):
            raise InvalidInput(f"{item['goal']!r} is not one of max, min", field=f"{field}.goal")
        if key in seen:
            raise InvalidInput(f"{key!r} is given more than once", field=f"{field}.key")
        seen.add(key)
        cleaned.append({"key": key, "goal": item["goal"]})
    return cleaned


def _validated_aliases(aliases: Any) -> list[str]:
    if not isinstance(aliases, (list, tuple)):
        raise InvalidInput("must be a list of alias names", field="protected_aliases")
    names: list[str] = []
    for index, alias in enumerate(aliases):
        name = validate_alias(alias, field=f"protected_aliases[{index}]")
        twin = next((other for other in names if other != name and other.casefold() == name.casefold()), None)
        if twin is not None:
            # Either would pass for the other on a page: protect one name, as move_label expects.
            raise InvalidInput(
                f"{name!r} differs from {twin!r} only in case; protect one of them",
                field=f"protected_aliases[{index}]",
            )
        if name not in names:
            names.append(name)
    return names


def _policy_snapshot(policy: PromotionPolicy) -> dict[str, Any]:
    return {
        "protected_aliases": list(policy.protected_aliases),
        "required_approvals": policy.required_approvals,
        "review_role": policy.review_role,
        "key_metrics": list(policy.key_metrics),
    }


def set_promotion_policy(
    *,
    actor: User,
    model: RegisteredModel,
    protected_aliases: Sequence[str] | None = None,
    required_approvals: int | None = None,
    review_role: str | None = None,
    key_metrics: list[dict[str, str]] | None = None,
) -> PromotionPolicy:
    """Change what a model protects and who must approve; admins only, every change audited."""
    require_role(actor, Role.ADMIN, action="Changing a promotion policy")
    changes: dict[str, Any] = {}
    if protected_aliases is not None:
        changes["protected_aliases"] = _validated_aliases(protected_aliases)
    if required_approvals is not None:
        if (
            isinstance(required_approvals, bool)
            or not isinstance(required_approvals, int)
            or not (1 <= required_approvals <= MAX_REQUIRED_APPROVALS)
        ):
            raise InvalidInput(
                f"must be a whole number from 1 to {MAX_REQUIRED_APPROVALS}, got {required_approvals!r}",
                field="required_approvals",
            )
        changes["required_approvals"] = required_approvals
    if review_role is not None:
        if review_role not in ReviewRole.values:
            raise InvalidInput(
                f"{review_role!r} is not one of {', '.join(ReviewRole.values)}", field="review_role"
            )
        changes["review_role"] = review_role
    if key_metrics is not None:
        changes["key_metrics"] = _validated_key_metrics(key_metrics)
    with transaction.atomic():
        lock_model(model)  # a policy change and a review of the same model never interleave
        policy = policy_for(model=model)
        before = _policy_snapshot(policy)  # the default's, when the model had no policy of its own
        for field, value in changes.items():
            setattr(policy, field, value)
        after = _policy_snapshot(policy)
        if after == before and policy.pk:
            return policy  # nothing changes: no write, no event
        policy.updated_by = actor
        policy.save()
        record_registry_event(
            actor=actor, action="promotion_policy.set", target=model, before=before, after=after
        )
        if policy.required_approvals < before["required_approvals"]:
            _apply_now_approved(actor=actor, model=model, required=policy.required_approvals)
    return policy


def _apply_now_approved(*, actor: User, model: RegisteredModel, required: int) -> None:
    """Apply the pending requests that a lowered number of approvals now lets through, oldest
    first: their reviewers already approved, and nothing else would ever decide them. Applying
    one supersedes the others for its label."""
    pending = (
        # A request whose source run is deleted waits for its restoring, as a review would.
        PromotionRequest.objects.filter(
            model=model, status=PromotionRequest.Status.PENDING, version__run__lifecycle=Lifecycle.ACTIVE
        )
        .annotate(approvals=Count("reviews", filter=Q(reviews__decision=Review.Decision.APPROVE)))
        .filter(approvals__gte=required)
        .order_by("created_at", "pk")
    )
    for candidate in pending:
        request = _locked(candidate)
        if request.status == PromotionRequest.Status.PENDING:  # not superseded by an earlier one
            _apply(
                actor=actor,
                request=request,
                now=timezone.now(),
                approvals=candidate.approvals,
                because=f"the policy now requires {required} approval{'s' if required > 1 else ''}",
            )
