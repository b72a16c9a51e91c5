import uuid

from django.conf import settings
from django.db import models
from django.db.models.functions import Left

from .experiments import Experiment, Lifecycle


def new_run_uuid() -> str:
    return uuid.uuid4().hex


class RunStatus(models.TextChoices):
    RUNNING = "RUNNING"
    SCHEDULED = "SCHEDULED"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"


class Run(models.Model):
    """One execution of training code. Public id is the 32-hex `uuid`; the integer pk keeps
    the point table narrow."""

    uuid = models.CharField(max_length=32, unique=True, default=new_run_uuid, editable=False)
    experiment = models.ForeignKey(Experiment, on_delete=models.PROTECT, related_name="runs")
    name = models.CharField(max_length=250)
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.RUNNING)
    start_time = models.DateTimeField(db_index=True)
    end_time = models.DateTimeField(null=True, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    artifact_uri = models.CharField(max_length=1000, blank=True)
    lifecycle = models.CharField(max_length=10, choices=Lifecycle.choices, default=Lifecycle.ACTIVE)
    # Deleted because its experiment was: restoring the experiment restores exactly these runs,
    # not those deleted on their own before.
    deleted_with_experiment = models.BooleanField(default=False, db_default=False, editable=False)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    # Context: where the run came from, so "why this model?" can name code and environment.
    code_commit = models.CharField(max_length=64, blank=True)
    source = models.CharField(max_length=1000, blank=True)
    environment = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-start_time", "uuid"]
        indexes = [models.Index(fields=["experiment", "lifecycle", "-start_time"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.uuid[:8]})"

    @property
    def how_to_restore(self) -> str:
        """What brings a deleted run back: restoring it, or the experiment it was deleted with."""
        return f"restore experiment {self.experiment_id}" if self.deleted_with_experiment else "restore it"

    @property
    def audit_id(self) -> str:
        return self.uuid

    @property
    def duration(self):
        if self.end_time is None:
            return None
        return self.end_time - self.start_time


# Run-table filters find params and tags by key and value through an index on the value's first
# characters: a whole value (up to 8,000 characters) may not fit in a b-tree entry.
VALUE_PREFIX = 200


class Param(models.Model):
    """A hyperparameter; immutable once logged (a different value is an error)."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="params")
    key = models.CharField(max_length=250)
    value = models.TextField(max_length=6000)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="param_unique_key")]
        indexes = [models.Index("key", Left("value", VALUE_PREFIX), "run", name="param_key_value_prefix")]

    def __str__(self) -> str:
        return f"{self.key}={self.value}"


class Tag(models.Model):
    """A mutable key/value label on a run (team, note, mlflow.* system tags)."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="tags")
    key = models.CharField(max_length=250)
    value = models.TextField(max_length=8000)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="tag_unique_key")]
        indexes = [models.Index("key", Left("value", VALUE_PREFIX), "run", name="tag_key_value_prefix")]

    def __str__(self) -> str:
        return f"{self.key}={self.value}"
