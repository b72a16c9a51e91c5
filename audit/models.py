"""The append-only, hash-chained audit log."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Subquery
from django.db.models.functions import Coalesce


class AppendOnlyError(Exception):
    """Raised when code tries to change or remove an audit event."""


class AuditEventQuerySet(models.QuerySet):
    def awaiting_seal(self, *, after: int | None = None) -> AuditEventQuerySet:
        """Events not linked into the chain yet: unsealed, after the head (`after`, or the head
        row's sequence). The bound matters: each seal leaves the event's unsealed version in the
        indexes until VACUUM removes it, and a scan for `hash IS NULL` from the bottom would walk
        every event sealed since then."""
        if after is None:
            head = AuditChainHead.objects.filter(id=1).values("sequence")
            return self.filter(hash__isnull=True, sequence__gt=Coalesce(Subquery(head), 0))
        return self.filter(hash__isnull=True, sequence__gt=after)

    def update(self, **kwargs):
        raise AppendOnlyError("Audit events cannot be updated.")

    def delete(self):
        raise AppendOnlyError("Audit events cannot be deleted.")


class AuditCheckpointQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError("Audit checkpoints cannot be updated.")

    def delete(self):
        raise AppendOnlyError("Audit checkpoints cannot be deleted.")


class AuditEvent(models.Model):
    """One recorded state change; once sealed, its hash covers the previous sealed event's hash.

    Writers insert events unsealed (no hash) in the transaction of the change they record, with
    `sequence` from the database sequence `audit_event_sequence`; the sealer (audit.sealing)
    links and hashes committed events in sequence order afterwards, so writers never wait for
    one another (docs/architecture.md, "The audit chain").
    """

    sequence = models.BigIntegerField(unique=True)
    created_at = models.DateTimeField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Kept beside the foreign key so the chain still verifies after a user is removed.
    actor_name = models.CharField(max_length=150)
    action = models.CharField(max_length=100)
    object_type = models.CharField(max_length=50)
    object_id = models.CharField(max_length=255)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    # Set once, by the sealer; null while the event waits for the next seal.
    previous_hash = models.CharField(max_length=64, null=True, blank=True)
    hash = models.CharField(max_length=64, unique=True, null=True, blank=True)
    sealed_at = models.DateTimeField(null=True, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["sequence"]
        # The audit page filters by each of these and pages newest first by sequence, so each
        # filter leads an index that ends in (or is ordered like) sequence; without them a rare
        # actor or action, or an old time range, scans the whole table (docs/architecture.md).
        indexes = [
            models.Index(fields=["object_type", "object_id", "sequence"]),
            models.Index(fields=["actor_name", "sequence"], name="audit_event_actor_seq"),
            models.Index(fields=["action", "sequence"], name="audit_event_action_seq"),
            models.Index(fields=["created_at"], name="audit_event_created_at"),
            # The sealer's work list. Until VACUUM it also keeps each sealed event's unsealed
            # version, so it is read from the head up (awaiting_seal), never from the bottom.
            models.Index(
                fields=["sequence"], condition=models.Q(hash__isnull=True), name="audit_event_unsealed"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.sequence} {self.action} {self.object_type}:{self.object_id}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError("Audit events cannot be updated.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("Audit events cannot be deleted.")

    @property
    def is_sealed(self) -> bool:
        return self.hash is not None


class AuditChainHead(models.Model):
    """The newest sealed event's sequence and hash; only the sealer locks and moves it."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    sequence = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64, default="0" * 64)

    def __str__(self) -> str:
        return f"head #{self.sequence}"


class AuditCheckpoint(models.Model):
    """A signed copy of the chain head; the signing key never enters the database.

    `document` is the checkpoint exactly as signed and exported (audit.checkpoint_format); the
    other columns repeat its main head for listing and are never trusted by verification.
    """

    created_at = models.DateTimeField()
    sequence = models.BigIntegerField()
    hash = models.CharField(max_length=64)
    key_id = models.CharField(max_length=64)
    document = models.TextField()

    objects = AuditCheckpointQuerySet.as_manager()

    class Meta:
        ordering = ["-sequence", "-id"]
        indexes = [models.Index(fields=["sequence"])]

    def __str__(self) -> str:
        return f"checkpoint {self.pk} at #{self.sequence}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError("Audit checkpoints cannot be updated.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("Audit checkpoints cannot be deleted.")


class AuditVerification(models.Model):
    """One check of the chain against its checkpoints; its state lives here, not in Celery."""

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"  # the check itself could not run (e.g. an unreadable checkpoint file)

    class Mode(models.TextChoices):
        INCREMENTAL = "incremental"
        FULL = "full"

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    mode = models.CharField(max_length=12, choices=Mode.choices, default=Mode.INCREMENTAL)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    ok = models.BooleanField(null=True)
    # The checkpoint the walk started from (incremental), so the next check can start later.
    anchor = models.ForeignKey(
        AuditCheckpoint, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    from_sequence = models.BigIntegerField(default=1)
    through_sequence = models.BigIntegerField(default=0)
    checked = models.BigIntegerField(default=0)
    checkpoints_checked = models.IntegerField(default=0)
    broken_sequence = models.BigIntegerField(null=True, blank=True)
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"verification {self.pk} ({self.status})"
