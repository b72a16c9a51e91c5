from django.conf import settings
from django.db import models

from .experiments import Experiment


class ExperimentKey(models.Model):
    """A param, metric, tag or dataset name some run of the experiment has logged.

    Kept on write by the same services every ingestion path calls, so the run table finds its
    columns (and the filter its unknown keys) without a DISTINCT over the experiment's runs.
    A key stays once seen, even when the runs that logged it are deleted.
    """

    class Kind(models.TextChoices):
        PARAM = "param"
        METRIC = "metric"
        TAG = "tag"
        DATASET = "dataset"

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="keys")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    key = models.CharField(max_length=500)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["experiment", "kind", "key"], name="experiment_key_unique")
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.key}"


class SavedView(models.Model):
    """A named run-table view of an experiment (its URL query), shared with the whole team."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="saved_views")
    name = models.CharField(max_length=200)
    query = models.TextField(max_length=20_000, help_text="The run table's query string, without '?'.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["experiment", "name"], name="saved_view_unique_name")]

    def __str__(self) -> str:
        return self.name

    @property
    def audit_id(self) -> str:
        return f"{self.experiment_id}/{self.name}"
