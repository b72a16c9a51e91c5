"""Reads of the review workflow: a model's policy, the requests, who may review what."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Value
from django.db.models.functions import Coalesce

from accounts.permissions import Level, level_of, levels_of, require_readable
from accounts.roles import Role, role_of
from audit.models import AuditEvent
from config.exceptions import ApplicationError, Conflict, InvalidInput, NotFound, PermissionDenied
from registry.models import (
    AliasHistory,
    Label,
    ModelAlias,
    ModelVersion,
    PromotionPolicy,
    PromotionRequest,
    RegisteredModel,
    Review,
    ReviewRole,
)
from registry.permissions import readable_models_q
from tracker import search
from tracker.models import Experiment, Lifecycle, Run
from tracker.permissions import readable_experiments_q


def default_policy(*, model: RegisteredModel) -> PromotionPolicy:
    """The policy of a model that has none of its own, from settings (not saved)."""
    return PromotionPolicy(
        model=model,
        protected_aliases=list(settings.REGISTRY_PROTECTED_ALIASES),
        required_approvals=settings.REGISTRY_REQUIRED_APPROVALS,
        review_role=settings.REGISTRY_REVIEW_ROLE,
        key_metrics=[],
    )


def policy_for(*, model: RegisteredModel) -> PromotionPolicy:
    """The model's own policy, or the settings' defaults; read fresh, never from a cache, since
    it decides whether a label may move."""
    return PromotionPolicy.objects.filter(model=model).first() or default_policy(model=model)


def _with_details(requests: QuerySet[PromotionRequest]) -> QuerySet[PromotionRequest]:
    return requests.select_related(
        "model", "version", "version__run", "version__run__user", "requester", "previous_version"
    ).annotate(
        approvals=Count("reviews", filter=Q(reviews__decision=Review.Decision.APPROVE)),
        # What the model's policy asks for now (a pending request is applied when it has them).
        required_approvals=Coalesce(
            F("model__promotion_policy__required_approvals"), Value(settings.REGISTRY_REQUIRED_APPROVALS)
        ),
    )


def get_promotion_request(*, request_id: int | str, user: Any) -> PromotionRequest:
    """One request with its reviews; refused (403) unless `user` may read its model, as opening
    the model itself is: a request shows the model's versions, their runs and the reviews."""
    try:
        number = int(request_id)
    except (TypeError, ValueError):
        raise InvalidInput(f"{request_id!r} is not a request number", field="request_id") from None
    found = (
        _with_details(PromotionRequest.objects.filter(pk=number))
        .prefetch_related("reviews__reviewer")
        .first()
    )
    if found is None:
        raise NotFound(f"promotion request #{number} does not exist", field="request_id")
    # Request numbers are sequential: the refusal names the request, never its model.
    require_readable(
        user,
        found.model,
        action="Reading a promotion request",
        named=f"the registered model of request #{number}",
    )
    return found


def list_promotion_requests(
    *,
    user: Any,
    model: RegisteredModel | None = None,
    status: str | None = None,
    version_id: int | None = None,
    label_name: str | None = None,
    requester: str | None = None,
    page_token: str | None = None,
) -> QuerySet[PromotionRequest]:
    """Requests of the models `user` may read, newest first, narrowed by any filter given, and
    after `page_token` (request_page_token of the last request of the page before)."""
    requests = PromotionRequest.objects.filter(readable_models_q(user, path="model_id"))
    if requester:
        requests = requests.filter(requester__username=requester)
    if page_token:
        created_at, pk = _request_cursor(page_token)
        requests = requests.filter(Q(created_at__lt=created_at) | Q(created_at=created_at, pk__lt=pk))
    if model is not None:
        requests = requests.filter(model=model)
    if status:
        if status not in PromotionRequest.Status.values:
            choices = ", ".join(PromotionRequest.Status.values)
            raise InvalidInput(f"{status!r} is not one of {choices}", field="status")
        requests = requests.filter(status=status)
    if version_id is not None:
        requests = requests.filter(version_id=version_id)
    if label_name:
        requests = requests.filter(label_name=label_name)
    return _with_details(requests).order_by("-created_at", "-pk")


def request_page_token(request: PromotionRequest) -> str:
    """The token of the page after `request` in list_promotion_requests' order."""
    return search.encode_cursor([request.created_at.astimezone(UTC).isoformat(), request.pk])


def _request_cursor(token: str) -> tuple[datetime, int]:
    values = search.decode_cursor(token)
    if len(values) != 2 or not isinstance(values[0], str):
        raise search.invalid_token()
    try:
        created_at = datetime.fromisoformat(values[0])
        if created_at.tzinfo is None:
            raise ValueError("a cursor time has an offset")
        created_at = created_at.astimezone(UTC)  # a far offset on year 1 or 9999 overflows here
    except (ValueError, OverflowError):
        raise search.invalid_token() from None
    return created_at, search.cursor_int(values[1])


def _writes_to_source_run(user: User) -> QuerySet[AuditEvent]:
    """The audit events of runs with `user` as their actor: every write to a run is one (the
    services record them in the write's transaction), so they say who shaped a run's evidence.
    Narrowed by run id, this reads the (object_type, object_id, sequence) index."""
    return AuditEvent.objects.filter(object_type=Run._meta.label_lower, actor_id=user.pk)


def _reviewable_by(user: User) -> QuerySet[PromotionRequest]:
    role = role_of(user)
    if role < Role.REVIEWER:
        return PromotionRequest.objects.none()
    # A reviewer reviews only what they may read: the policy says who reviews, READ on the
    # model and on its source run's experiment (the evidence) is what lets them review it, and a
    # deleted source run stops it (review_refusal says so for one request).
    requests = (
        PromotionRequest.objects.filter(
            status=PromotionRequest.Status.PENDING, version__run__lifecycle=Lifecycle.ACTIVE
        )
        .filter(readable_models_q(user, path="model_id"))
        .filter(readable_experiments_q(user, path="version__run__experiment_id"))
        .exclude(Q(requester=user) | Q(version__run__user=user) | Q(reviews__reviewer=user))
        # As review_refusal: nor a run the reviewer wrote to (one EXISTS, not a query per request).
        .exclude(Exists(_writes_to_source_run(user).filter(object_id=OuterRef("version__run__uuid"))))
    )
    if role < Role.ADMIN:
        # Models whose policy (their own, or the settings' default) lets the reviewer role review.
        own = Q(model__promotion_policy__review_role=ReviewRole.REVIEWER)
        if settings.REGISTRY_REVIEW_ROLE == ReviewRole.REVIEWER:
            own |= Q(model__promotion_policy__isnull=True)
        requests = requests.filter(own)
    return requests


def review_queue_for(*, user: User) -> QuerySet[PromotionRequest]:
    """Pending requests `user` may review, oldest first (the longest-waiting is decided first)."""
    return _with_details(_reviewable_by(user)).order_by("created_at", "pk")


def pending_review_count(*, user: User) -> int:
    """How many requests wait for `user`: the number on the navigation bar's badge."""
    return _reviewable_by(user).count()


@dataclass(frozen=True)
class ReviewVerdict:
    """Whether a user may review a request, and if not, the reason shown to them."""

    allowed: bool
    reason: str = ""


def review_refusal(*, user: User, request: PromotionRequest) -> ApplicationError | None:
    """Why `user` may not review `request` (None: they may). Every path (page, APIs, admin,
    commands) asks this one function, so separation of duties holds on all of them."""
    if request.status != PromotionRequest.Status.PENDING:
        return Conflict(f"request #{request.pk} is already {request.status}", field="request")
    if request.requester_id == user.pk:
        return PermissionDenied(
            f"request #{request.pk} was opened by {user.username}, who cannot review their own request",
            field="request",
        )
    run = request.version.run
    if run.user_id is not None and run.user_id == user.pk:
        return PermissionDenied(
            f"{user.username} created run {run.uuid}, the source of version {request.version.version}, "
            "and cannot review its promotion",
            field="request",
        )
    # Whoever wrote to the run (a metric, a tag, a rename) shaped the evidence as its creator did.
    written = _writes_to_source_run(user).filter(object_id=run.audit_id).values_list("action", flat=True)
    action = written.order_by("sequence").first()
    if action is not None:
        return PermissionDenied(
            f"{user.username} wrote to run {run.uuid} ({action}), the source of version "
            f"{request.version.version}, and cannot review its promotion",
            field="request",
        )
    # READ first: the request was reached by its number, so whoever may not read the model must
    # not learn its name from the refusals below.
    held = level_of(user, request.model)
    if held < Level.READ:
        return PermissionDenied(
            f"reviewing request #{request.pk} needs READ permission on its registered model; "
            f"you have {held.name}",
            field="request",
        )
    policy = policy_for(model=request.model)
    needed = Role.ADMIN if policy.review_role == ReviewRole.ADMIN else Role.REVIEWER
    if role_of(user) < needed:
        return PermissionDenied(
            f"reviewing promotions of registered model {request.model.name!r} "
            f"needs the {needed.group_name} role",
            field="request",
        )
    if run.lifecycle != Lifecycle.ACTIVE:
        return Conflict(
            f"run {run.uuid}, the source of version {request.version.version}, is deleted: "
            f"{run.how_to_restore} before the request is reviewed",
            field="request",
        )
    # The run is the evidence: nobody approves (or rejects) what they cannot read.
    if levels_of(user, Experiment, [run.experiment_id])[run.experiment_id] < Level.READ:
        return PermissionDenied(
            f"reviewing this request needs READ on the experiment where run {run.uuid}, its evidence, "
            "was logged; its managers can grant it",
            field="request",
        )
    if request.reviews.filter(reviewer=user).exists():
        return Conflict(f"{user.username} has already reviewed request #{request.pk}", field="request")
    return None


def can_review(*, user: User, request: PromotionRequest) -> ReviewVerdict:
    """Whether the page shows `user` the approve/reject form, or the reason it does not."""
    refusal = review_refusal(user=user, request=request)
    return ReviewVerdict(allowed=refusal is None, reason=refusal.message if refusal else "")


def label_holder(*, model: RegisteredModel, label: Label) -> ModelVersion | None:
    """The version holding an alias, or the newest version in a stage (MLflow lets several
    versions share one; a promotion archives the others)."""
    if label.kind == AliasHistory.Kind.ALIAS:
        found = ModelAlias.objects.select_related("version").filter(model=model, alias=label.name).first()
        return found.version if found else None
    return model.versions.filter(stage=label.name).order_by("-version").first()
