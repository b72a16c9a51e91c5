"""Registered models, their versions and the aliases and stages that point at them."""

from django.conf import settings
from django.db import models

from tracker.models import LoggedModel, Run


class RegisteredModel(models.Model):
    """A named model whose versions are promoted through aliases (or legacy stages)."""

    name = models.CharField(max_length=250, unique=True)
    description = models.TextField(blank=True, max_length=5000)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def audit_id(self) -> str:
        return self.name


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


class ModelVersion(models.Model):
    """One version of a model; it always points at the run that produced it."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="versions")
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

    class Meta:
        ordering = ["model", "-version"]
        constraints = [models.UniqueConstraint(fields=["model", "version"], name="model_version_unique")]

    def __str__(self) -> str:
        return f"{self.model.name} v{self.version}"

    @property
    def audit_id(self) -> str:
        return f"{self.model.name}/{self.version}"


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

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="aliases")
    alias = models.CharField(max_length=255)
    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="aliases")
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

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="alias_history")
    kind = models.CharField(max_length=5, choices=Kind.choices)
    name = models.CharField(max_length=255)
    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="alias_history")
    assigned_at = models.DateTimeField()
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    removed_at = models.DateTimeField(null=True, blank=True)
    removed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["model", "kind", "name", "-assigned_at"]
        indexes = [models.Index(fields=["model", "kind", "name", "removed_at"])]
        verbose_name_plural = "alias history"

    def __str__(self) -> str:
        return f"{self.model.name} {self.kind}:{self.name} → v{self.version.version}"
