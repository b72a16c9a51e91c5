"""MLflow 3's logged models: a model a run (or nothing) produced, with its own params, tags,
metrics and artifact folder, before anyone registers it as a version."""

import uuid

from django.conf import settings
from django.db import models

from .experiments import Experiment, Lifecycle
from .runs import Run


def new_logged_model_id() -> str:
    return f"m-{uuid.uuid4().hex}"


class LoggedModelStatus(models.TextChoices):
    PENDING = "LOGGED_MODEL_PENDING"
    READY = "LOGGED_MODEL_READY"
    UPLOAD_FAILED = "LOGGED_MODEL_UPLOAD_FAILED"


class LoggedModel(models.Model):
    """What `mlflow.<flavor>.log_model` creates; a registry version points at one."""

    model_id = models.CharField(max_length=34, unique=True, default=new_logged_model_id, editable=False)
    experiment = models.ForeignKey(Experiment, on_delete=models.PROTECT, related_name="logged_models")
    name = models.CharField(max_length=250)
    model_type = models.CharField(max_length=500, blank=True)
    source_run = models.ForeignKey(
        Run, null=True, blank=True, on_delete=models.PROTECT, related_name="logged_models"
    )
    status = models.CharField(
        max_length=30, choices=LoggedModelStatus.choices, default=LoggedModelStatus.PENDING
    )
    status_message = models.TextField(blank=True, max_length=5000)
    creator = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    artifact_uri = models.CharField(max_length=1000, blank=True)
    lifecycle = models.CharField(max_length=10, choices=Lifecycle.choices, default=Lifecycle.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "model_id"]
        indexes = [models.Index(fields=["experiment", "name"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.model_id})"

    @property
    def audit_id(self) -> str:
        return self.model_id


class LoggedModelParam(models.Model):
    model = models.ForeignKey(LoggedModel, on_delete=models.CASCADE, related_name="params")
    key = models.CharField(max_length=250)
    value = models.TextField(max_length=6000)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model", "key"], name="logged_model_param_unique_key")]

    def __str__(self) -> str:
        return f"{self.key}={self.value}"


class LoggedModelTag(models.Model):
    model = models.ForeignKey(LoggedModel, on_delete=models.CASCADE, related_name="tags")
    key = models.CharField(max_length=250)
    value = models.TextField(max_length=8000)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model", "key"], name="logged_model_tag_unique_key")]

    def __str__(self) -> str:
        return f"{self.key}={self.value}"


class LoggedModelMetric(models.Model):
    """A run metric logged with a `model_id`: the evidence attached to that model."""

    model = models.ForeignKey(LoggedModel, on_delete=models.CASCADE, related_name="metrics")
    run = models.ForeignKey(Run, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=250)
    value = models.FloatField()
    is_nan = models.BooleanField(default=False)
    step = models.BigIntegerField(default=0)
    timestamp = models.BigIntegerField()
    dataset_name = models.CharField(max_length=500, blank=True)
    dataset_digest = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["key", "step", "timestamp"]
        constraints = [
            models.UniqueConstraint(
                fields=["model", "key", "step", "timestamp", "dataset_name", "dataset_digest"],
                name="logged_model_metric_unique_point",
            )
        ]

    def __str__(self) -> str:
        return f"{self.key}@{self.step}={'NaN' if self.is_nan else self.value}"


class RunModelLink(models.Model):
    """A logged model a run used as input, or produced (at a step) as output."""

    class Direction(models.TextChoices):
        INPUT = "input"
        OUTPUT = "output"

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="model_links")
    model = models.ForeignKey(LoggedModel, on_delete=models.CASCADE, related_name="run_links")
    direction = models.CharField(max_length=6, choices=Direction.choices)
    step = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["run", "direction", "step"]
        constraints = [
            models.UniqueConstraint(fields=["run", "model", "direction"], name="run_model_link_unique")
        ]

    def __str__(self) -> str:
        return f"{self.run_id} {self.direction} {self.model_id}"
