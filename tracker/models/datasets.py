from django.db import models

from .runs import Run


class DatasetInput(models.Model):
    """A dataset a run used, with the digest that pins its exact contents."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="dataset_inputs")
    name = models.CharField(max_length=500)
    digest = models.CharField(max_length=64)
    version = models.CharField(max_length=100, blank=True)
    source_type = models.CharField(max_length=100, blank=True)
    source = models.TextField(blank=True, max_length=65535)
    context = models.CharField(max_length=100, blank=True, help_text="training, validation, test…")
    schema = models.TextField(blank=True)
    profile = models.TextField(blank=True)
    # MLflow's input tags, in the order sent: a list of {"key", "value"} objects.
    tags = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "context"]
        constraints = [
            models.UniqueConstraint(fields=["run", "name", "digest", "context"], name="dataset_input_unique")
        ]
        indexes = [models.Index(fields=["name", "version"]), models.Index(fields=["digest"])]

    def __str__(self) -> str:
        return f"{self.name}@{self.version or self.digest[:8]} ({self.context or 'input'})"

    @property
    def extra_tags(self) -> list[dict[str, str]]:
        """The input tags beside the context (which has its own column on the run page)."""
        return [tag for tag in self.tags if tag.get("key") != "mlflow.data.context"]
