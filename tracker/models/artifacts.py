from django.db import models

from .runs import Run


def artifact_storage_name(artifact: "Artifact", filename: str) -> str:
    return f"runs/{artifact.run.uuid}/{artifact.path}"


class Artifact(models.Model):
    """A file a run produced, kept in Django storage under ARTIFACT_ROOT with its checksum."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="artifacts")
    path = models.CharField(max_length=1000, help_text="Relative path inside the run's artifact root.")
    file = models.FileField(upload_to=artifact_storage_name, max_length=1100)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["path"]
        constraints = [models.UniqueConstraint(fields=["run", "path"], name="artifact_unique_path")]

    def __str__(self) -> str:
        return self.path
