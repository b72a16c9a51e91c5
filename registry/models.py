"""Registered models, their versions, the aliases and stages that point at them, and the
reviewed promotions that move protected ones."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import models
from django.db.models import Manager, Q

from accounts.permissions import PermissionGrant
from tracker.models import LoggedModel, Run

# Audit object ids of registry objects since reviewed promotions: "id:<primary key>", which a
# rename never changes. Older events used the name ("<model>" and "<model>/<version>"); names
# cannot contain ':', so the two never collide (registry.selectors.audit_object_filter).
AUDIT_ID_PREFIX = "id:"


class LiveManager(models.Manager):
    """Hides soft-deleted rows, as MLflow hides deleted models and versions, on every list and
    lookup; `all_objects` still sees them (the admin, restore, history)."""

    def get_queryset(self) -> models.QuerySet:
        return super().get_queryset().filter(deleted_at__isnull=True)


class SoftDeletable(models.Model):
    """A row that is marked deleted instead of removed, so the history pointing at it survives."""

    deleted_at = models.DateTimeField(null=True, blank=True)
    deleted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    all_objects = Manager()
    objects = LiveManager()

    class Meta:
        abstract = True
        default_manager_name = "objects"  # related managers (model.versions) hide deleted rows too
        base_manager_name = "all_objects"

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None


class RegisteredModel(SoftDeletable):
    """A named model whose versions are promoted through aliases (or legacy stages)."""

    name = models.CharField(max_length=250)
    description = models.TextField(blank=True, max_length=5000)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # The highest number a version of this model has taken (deleted versions keep theirs). Only
    # the statements that number versions write it, under the row's lock
    # (registry/services/version_insert.py); services save a model with `update_fields`.
    last_version = models.PositiveIntegerField(default=0, editable=False)

    class Meta(SoftDeletable.Meta):
        ordering = ["name"]
        constraints = [
            # A deleted model's name may be registered again (as in MLflow); restoring it then
            # needs the name to be free.
            models.UniqueConstraint(
                fields=["name"], condition=Q(deleted_at__isnull=True), name="registered_model_live_name"
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def audit_id(self) -> str:
        return f"{AUDIT_ID_PREFIX}{self.pk}"

    @staticmethod
    def permission_grant_model() -> type[RegisteredModelPermission]:
        return RegisteredModelPermission


class RegisteredModelPermission(PermissionGrant):
    """A user's READ / EDIT / MANAGE / NO_PERMISSIONS on a registered model and its versions.

    Beside the promotion policy, never above it: MANAGE does not approve a protected move.
    """

    TARGET_FIELD = "model"
    AUDIT_PREFIX = "registered_model"

    model = models.ForeignKey(RegisteredModel, on_delete=models.PROTECT, related_name="permissions")

    class Meta:
        ordering = ["model", "user"]
        constraints = [
            models.UniqueConstraint(fields=["model", "user"], name="registered_model_permission_unique_user")
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.level_name} on {self.model}"


class RegisteredModelTag(models.Model):
    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="tags")
    key = models.CharField(max_length=250)
    value = models.TextField(max_length=100000)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["model", "key"], name="registered_model_tag_unique_key")
        ]

    def __str__(self) -> str:
        return f"{self.key}={self.value}"


class Stage(models.TextChoices):
    """MLflow's legacy stages, kept for old clients; aliases are the modern pointer."""

    NONE = "None"
    STAGING = "Staging"
    PRODUCTION = "Production"
    ARCHIVED = "Archived"


class ModelVersion(SoftDeletable):
    """One version of a model; it always points at the run that produced it."""

    # No index of its own: `model_version_unique` leads with the model and serves its lookups
    # (every registration wrote both).
    model = models.ForeignKey(
        RegisteredModel, on_delete=models.PROTECT, related_name="versions", db_index=False
    )
    version = models.PositiveIntegerField()
    # PROTECT: the evidence behind an approved model must outlive attempts to remove it.
    run = models.ForeignKey(Run, on_delete=models.PROTECT, related_name="model_versions")
    source = models.CharField(max_length=1000, help_text="Where the model's files are (an MLflow URI).")
    # MLflow 3 registers a logged model (`models:/m-…`); older clients name a run's folder.
    logged_model = models.ForeignKey(
        LoggedModel, null=True, blank=True, on_delete=models.PROTECT, related_name="versions"
    )
    run_link = models.CharField(max_length=1000, blank=True)
    description = models.TextField(blank=True, max_length=5000)
    stage = models.CharField(max_length=20, choices=Stage.choices, default=Stage.NONE)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(SoftDeletable.Meta):
        ordering = ["model", "-version"]
        constraints = [models.UniqueConstraint(fields=["model", "version"], name="model_version_unique")]

    def __str__(self) -> str:
        return f"{self.model.name} v{self.version}"

    @property
    def audit_id(self) -> str:
        return f"{AUDIT_ID_PREFIX}{self.pk}"


class ModelVersionTag(models.Model):
    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="tags")
    key = models.CharField(max_length=250)
    value = models.TextField(max_length=100000)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["version", "key"], name="model_version_tag_unique_key")
        ]

    def __str__(self) -> str:
        return f"{self.key}={self.value}"


class ModelAlias(models.Model):
    """A named pointer (`staging`, `production`) to exactly one version of a model."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.PROTECT, related_name="aliases")
    alias = models.CharField(max_length=255)
    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="aliases")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["alias"]
        constraints = [models.UniqueConstraint(fields=["model", "alias"], name="model_alias_unique")]

    def __str__(self) -> str:
        return f"{self.model.name}@{self.alias}"


class AliasHistory(models.Model):
    """Which version held which alias or stage, from when until when, moved by whom."""

    class Kind(models.TextChoices):
        ALIAS = "alias"
        STAGE = "stage"

    # PROTECT throughout: the history of what was in production outlives everything it names.
    model = models.ForeignKey(RegisteredModel, on_delete=models.PROTECT, related_name="alias_history")
    kind = models.CharField(max_length=5, choices=Kind.choices)
    name = models.CharField(max_length=255)
    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="alias_history")
    assigned_at = models.DateTimeField()
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    removed_at = models.DateTimeField(null=True, blank=True)
    removed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The reviewed (or forced) promotion that made this assignment; None for a direct move.
    request = models.ForeignKey(
        "PromotionRequest", null=True, blank=True, on_delete=models.PROTECT, related_name="moves"
    )

    class Meta:
        ordering = ["model", "kind", "name", "-assigned_at"]
        indexes = [models.Index(fields=["model", "kind", "name", "removed_at"])]
        verbose_name_plural = "alias history"

    def __str__(self) -> str:
        return f"{self.model.name} {self.kind}:{self.name} → v{self.version.version}"


@dataclass(frozen=True)
class Label:
    """Where a version is promoted to: an alias (`production`) or a legacy stage (`Production`)."""

    kind: str  # AliasHistory.Kind
    name: str

    @classmethod
    def alias(cls, name: str) -> Label:
        return cls(AliasHistory.Kind.ALIAS, name)

    @classmethod
    def stage(cls, name: str) -> Label:
        return cls(AliasHistory.Kind.STAGE, name)

    def __str__(self) -> str:
        return f"alias {self.name!r}" if self.kind == AliasHistory.Kind.ALIAS else f"stage {self.name!r}"


class ReviewRole(models.TextChoices):
    """Who may review a model's promotions: the reviewer role (and admins), or admins only."""

    REVIEWER = "reviewer"
    ADMIN = "admin"


class PromotionPolicy(models.Model):
    """How a model's protected aliases move: only through requests approved by enough reviewers.

    A model without a row follows the settings' defaults (registry.selectors.policy_for).
    """

    model = models.OneToOneField(RegisteredModel, on_delete=models.PROTECT, related_name="promotion_policy")
    # Alias names; protecting `production` protects the legacy stage `Production` with it.
    protected_aliases = models.JSONField(default=list)
    required_approvals = models.PositiveSmallIntegerField(default=1)
    review_role = models.CharField(max_length=10, choices=ReviewRole.choices, default=ReviewRole.REVIEWER)
    # [{"key": "val_f1", "goal": "max"}]: what the review page compares, and which way is better.
    key_metrics = models.JSONField(default=list)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name_plural = "promotion policies"
        constraints = [
            models.CheckConstraint(condition=Q(required_approvals__gte=1), name="policy_needs_an_approval")
        ]

    def __str__(self) -> str:
        return f"policy of {self.model.name}"

    def protects(self, label: Label) -> bool:
        if label.kind == AliasHistory.Kind.STAGE:
            return label.name == Stage.PRODUCTION and "production" in self.protected_aliases
        return label.name in self.protected_aliases

    def lookalike_of(self, alias: str) -> str | None:
        """The protected alias that `alias` differs from only in case ("Production" beside a
        protected "production"), if any: on a page or in a deployment's config it would pass for
        the reviewed one."""
        folded = alias.casefold()
        return next((p for p in self.protected_aliases if p != alias and p.casefold() == folded), None)


class PromotionRequest(models.Model):
    """A contributor's request to point a protected alias (or stage) at a version, decided by
    reviewers; a forced row is an admin's break-glass move, recorded with its reason."""

    class Status(models.TextChoices):
        PENDING = "pending"
        APPROVED = "approved"  # enough approvals: the label was moved in the same transaction
        REJECTED = "rejected"
        WITHDRAWN = "withdrawn"
        SUPERSEDED = "superseded"  # another request for the same label was applied first
        CLOSED = "closed"  # its version (or model) was deleted

    model = models.ForeignKey(RegisteredModel, on_delete=models.PROTECT, related_name="promotion_requests")
    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="promotion_requests")
    label_kind = models.CharField(max_length=5, choices=AliasHistory.Kind.choices)
    label_name = models.CharField(max_length=255)
    requester = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    justification = models.TextField(max_length=5000)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    # Which version held the label when the request was opened (None: nobody held it).
    previous_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    # Why a request ended without being applied: "superseded by request #7", "version 3 was deleted".
    closed_reason = models.CharField(max_length=500, blank=True)
    forced = models.BooleanField(default=False)
    forced_reason = models.TextField(blank=True, max_length=5000)

    class Meta:
        ordering = ["created_at", "pk"]
        indexes = [
            models.Index(fields=["status", "created_at"]),
            models.Index(fields=["model", "label_kind", "label_name", "status"]),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["version", "label_kind", "label_name"],
                condition=Q(status="pending"),
                name="one_pending_request_per_version_and_label",
            )
        ]

    def __str__(self) -> str:
        return f"request #{self.pk}: {self.model.name} v{self.version.version} → {self.label}"

    @property
    def label(self) -> Label:
        return Label(self.label_kind, self.label_name)

    @property
    def audit_id(self) -> str:
        return str(self.pk)


class Review(models.Model):
    """One reviewer's decision on a request; a reviewer counts once."""

    class Decision(models.TextChoices):
        APPROVE = "approve"
        REJECT = "reject"

    request = models.ForeignKey(PromotionRequest, on_delete=models.PROTECT, related_name="reviews")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decision = models.CharField(max_length=7, choices=Decision.choices)
    comment = models.TextField(blank=True, max_length=5000)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["request", "reviewer"], name="one_review_per_reviewer")
        ]

    def __str__(self) -> str:
        return f"{self.decision} of request #{self.request_id} by {self.reviewer}"


class Webhook(models.Model):
    """An HTTP endpoint told about registry events (a version registered, a promotion requested,
    approved or applied…), for a chat channel, a CI job or a deployment system.

    Deliveries read the sealed audit chain after `cursor`, never the write paths: a webhook adds
    nothing to a registry write, and it is told exactly what the trail recorded, in its order
    (registry.services.webhook_delivery).
    """

    name = models.CharField(max_length=100)
    url = models.URLField(max_length=2000)
    # None: every model's events.
    model = models.ForeignKey(
        RegisteredModel, null=True, blank=True, on_delete=models.CASCADE, related_name="webhooks"
    )
    events = models.JSONField(default=list)  # audit actions, a subset of WEBHOOK_EVENTS
    # Signs each body (HMAC-SHA256) so the receiver can tell a delivery came from this server.
    # Shown once, when made or rotated; the server needs it to sign, so it is kept as given.
    secret = models.CharField(max_length=100)
    is_active = models.BooleanField(default=True)
    # The audit sequence up to which events have been turned into deliveries.
    cursor = models.BigIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "pk"]

    def __str__(self) -> str:
        return self.name

    @property
    def audit_id(self) -> str:
        return f"{AUDIT_ID_PREFIX}{self.pk}"


class WebhookDelivery(models.Model):
    """One event sent (or to be sent) to one webhook, retried with growing delays until it is
    answered with a 2xx or runs out of attempts."""

    class Status(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed"  # every attempt failed; an admin may send it again

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey("audit.AuditEvent", on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=9, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    # The receiver's answer (its first characters) or why there was none: shown to admins.
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-pk"]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]
        constraints = [
            models.UniqueConstraint(fields=["webhook", "event"], name="one_delivery_per_webhook_event")
        ]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.webhook} ← event #{self.event_id} ({self.status})"
