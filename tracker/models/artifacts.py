from django.db import models
from django.db.models import Q

from .logged_models import LoggedModel
from .runs import Run

# Who can own files: a run, or a logged model (MLflow 3 keeps a model's files apart from its run).
ArtifactOwner = Run | LoggedModel


def artifact_storage_name(artifact: "Artifact", filename: str) -> str:
    if artifact.logged_model is not None:
        return f"models/{artifact.logged_model.model_id}/{artifact.path}"
    assert artifact.run is not None  # the check constraint: exactly one owner
    return f"runs/{artifact.run.uuid}/{artifact.path}"


class Artifact(models.Model):
    """A file a run (or a logged model) produced, kept in Django storage with its checksum.

    Exactly one owner: a run's artifact folder, or a logged model's (MLflow 3 writes a model's
    files under the model, not under the run that logged it).
    """

    run = models.ForeignKey(Run, null=True, blank=True, on_delete=models.CASCADE, related_name="artifacts")
    logged_model = models.ForeignKey(
        LoggedModel, null=True, blank=True, on_delete=models.CASCADE, related_name="artifacts"
    )
    path = models.CharField(max_length=1000, help_text="Relative path inside the owner's artifact root.")
    file = models.FileField(upload_to=artifact_storage_name, max_length=1100)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["path"]
        constraints = [
            models.UniqueConstraint(fields=["run", "path"], name="artifact_unique_path"),
            models.UniqueConstraint(fields=["logged_model", "path"], name="artifact_unique_model_path"),
            models.CheckConstraint(
                condition=Q(run__isnull=False, logged_model__isnull=True)
                | Q(run__isnull=True, logged_model__isnull=False),
                name="artifact_has_one_owner",
            ),
        ]

    def __str__(self) -> str:
        return self.path
