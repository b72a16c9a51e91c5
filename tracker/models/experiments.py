from __future__ import annotations

from django.conf import settings
from django.db import models

from accounts.permissions import Level, PermissionGrant

# MLflow clients expect experiment "0", named "Default", to exist; a migration creates it.
DEFAULT_EXPERIMENT_ID = 0


class Lifecycle(models.TextChoices):
    ACTIVE = "active", "Active"
    DELETED = "deleted", "Deleted"


class Experiment(models.Model):
    """A named group of runs that answer one question."""

    name = models.CharField(max_length=500, unique=True)
    description = models.TextField(blank=True)
    artifact_location = models.CharField(max_length=1000, blank=True)
    lifecycle = models.CharField(max_length=10, choices=Lifecycle.choices, default=Lifecycle.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @staticmethod
    def permission_grant_model() -> type[ExperimentPermission]:
        return ExperimentPermission

    @staticmethod
    def permission_defaults() -> dict[int, Level]:
        """Default is everyone's: an MLflow script that names no experiment logs there, so
        without a grant of their own everyone holds at least DEFAULT_EXPERIMENT_PERMISSION
        (EDIT) on it; roles still cap it (a viewer reads) and a user's own grant still wins."""
        return {DEFAULT_EXPERIMENT_ID: Level[settings.DEFAULT_EXPERIMENT_PERMISSION]}


class ExperimentPermission(PermissionGrant):
    """A user's READ / EDIT / MANAGE / NO_PERMISSIONS on an experiment and so on its runs."""

    TARGET_FIELD = "experiment"
    AUDIT_PREFIX = "experiment"

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="permissions")

    class Meta:
        ordering = ["experiment", "user"]
        constraints = [
            models.UniqueConstraint(fields=["experiment", "user"], name="experiment_permission_unique_user")
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.level_name} on {self.experiment}"


class ExperimentTag(models.Model):
    """A mutable key/value label on an experiment."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="tags")
    key = models.CharField(max_length=250)
    value = models.TextField(max_length=20000)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["experiment", "key"], name="experiment_tag_unique_key")
        ]

    def __str__(self) -> str:
        return f"{self.key}={self.value}"
