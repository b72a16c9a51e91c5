import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from .experiments import Experiment
from .runs import Run


def upload_storage_name(upload: "BulkUpload", filename: str) -> str:
    # A fresh folder per upload: two files of the same name never overwrite each other.
    return f"uploads/{uuid.uuid4().hex}/{filename}"


class BulkUpload(models.Model):
    """A file of metric points, stored first and then ingested all-or-nothing by a Celery task.

    The row is the task's state (NetBox's Job): status, progress, the error with its line, and a
    lease that tells the periodic sweep whether a worker is still at it.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    class Format(models.TextChoices):
        CSV = "csv", "CSV"
        JSONL = "jsonl", "JSON Lines"
        PARQUET = "parquet", "Parquet"
        TENSORBOARD = "tensorboard", "TensorBoard event file"

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    # The target: every row goes to `run`; or rows name their runs, optionally inside
    # `experiment`, where `create_runs` makes runs from the names the file gives.
    run = models.ForeignKey(Run, null=True, blank=True, on_delete=models.PROTECT, related_name="uploads")
    experiment = models.ForeignKey(
        Experiment, null=True, blank=True, on_delete=models.PROTECT, related_name="uploads"
    )
    create_runs = models.BooleanField(default=False)
    format = models.CharField(max_length=12, choices=Format.choices)
    file = models.FileField(upload_to=upload_storage_name, max_length=500)
    file_name = models.CharField(max_length=255, blank=True)
    sha256 = models.CharField(max_length=64)
    size_bytes = models.BigIntegerField()
    # "run:<id>", "experiment:<id>[:create]" or "any": with sha256, what makes a re-upload the same.
    target_key = models.CharField(max_length=64)
    idempotency_key = models.CharField(max_length=255, blank=True)
    bytes_done = models.BigIntegerField(default=0)
    rows_done = models.BigIntegerField(default=0)
    points_inserted = models.BigIntegerField(default=0)
    runs_created = models.IntegerField(default=0)
    error_message = models.TextField(blank=True)
    error_line = models.BigIntegerField(null=True, blank=True)
    error_column = models.CharField(max_length=100, blank=True)
    attempts = models.IntegerField(default=0)
    # Who holds the upload now (a token per attempt) and when it last said so.
    lease_token = models.CharField(max_length=32, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="bulk_uploads"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # The same Idempotency-Key from the same user is the same upload.
            models.UniqueConstraint(
                fields=["created_by", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="bulkupload_unique_idempotency_key",
            ),
            # The same file from the same user for the same target is the same upload, unless
            # that one failed. Another user's upload of it is theirs, checked against their rights.
            models.UniqueConstraint(
                fields=["created_by", "target_key", "sha256"],
                condition=~Q(status="failed"),
                name="bulkupload_unique_file_per_target",
            ),
        ]
        indexes = [
            models.Index(fields=["experiment", "-created_at"]),
            models.Index(fields=["status", "heartbeat_at"]),
        ]

    def __str__(self) -> str:
        return f"upload {self.pk} ({self.status})"

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None
