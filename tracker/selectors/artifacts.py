"""Reads of artifacts: a run's files, and the folders of runs and logged models as MLflow's
artifact API lists them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from config.exceptions import NotFound
from tracker.models import Artifact, ArtifactOwner, Run
from tracker.permissions import require_run_readable
from tracker.validation import validate_artifact_path

from .logged_models import get_logged_model


def list_artifacts(*, run: Run, prefix: str = "") -> QuerySet[Artifact]:
    """The run's files, or those under the folder `prefix` (a relative path inside the run's
    artifacts, as uploads take: `..` is refused, not answered with an empty list)."""
    artifacts = Artifact.objects.filter(run=run)
    if prefix:
        folder = validate_artifact_path(prefix.rstrip("/") or prefix, field="path")
        artifacts = artifacts.filter(path__startswith=folder + "/")
    return artifacts.order_by("path")


def get_artifact(*, run: Run, path: str) -> Artifact:
    artifact = Artifact.objects.filter(run=run, path=path).first()
    if artifact is None:
        raise NotFound(f"run {run.uuid} has no artifact at {path!r}", field="path")
    return artifact


def get_artifact_owner(
    *, user: Any, experiment_id: str, run_id: str = "", model_id: str = ""
) -> ArtifactOwner:
    """The run or logged model an artifact path names, which must belong to the experiment the
    path starts with (`<experiment>/<run>/artifacts/…`, `<experiment>/models/<model>/artifacts/…`)."""
    owner: ArtifactOwner
    if model_id:
        owner = get_logged_model(model_id=model_id, user=user, allow_deleted=True)
        label = f"logged model {model_id}"
    else:
        runs = Run.objects.only("id", "uuid", "lifecycle", "experiment_id")
        run = runs.filter(uuid=run_id).first()
        if run is None:
            raise NotFound(f"run {run_id!r} does not exist", field="path")
        owner, label = run, f"run {run_id}"
        require_run_readable(user, run, action="Reading a run's artifacts")
    if str(owner.experiment_id) != experiment_id:
        raise NotFound(f"{label} is not in experiment {experiment_id!r}", field="path")
    return owner


def _owned_artifacts(owner: ArtifactOwner) -> QuerySet[Artifact]:
    if isinstance(owner, Run):
        return Artifact.objects.filter(run=owner)
    return Artifact.objects.filter(logged_model=owner)


@dataclass(frozen=True)
class ArtifactEntry:
    path: str  # relative to the owner's artifact root
    is_dir: bool
    size: int | None  # None for a folder


def artifact_directory(*, owner: ArtifactOwner, path: str = "") -> list[ArtifactEntry]:
    """What lies directly inside a folder of the owner's artifacts: its files and sub-folders.

    MLflow lists one level at a time, and lists nothing for a file or a path that is not there.
    """
    prefix = f"{path.strip('/')}/" if path.strip("/") else ""
    artifacts = _owned_artifacts(owner)
    if prefix:
        artifacts = artifacts.filter(path__startswith=prefix)
    entries: dict[str, ArtifactEntry] = {}
    for artifact_path, size in artifacts.values_list("path", "size"):
        if not artifact_path.startswith(prefix):  # SQLite's LIKE ignores case
            continue
        head, below, _ = artifact_path[len(prefix) :].partition("/")
        name = prefix + head
        if below:
            entries[name] = ArtifactEntry(name, True, None)
        else:
            entries.setdefault(name, ArtifactEntry(name, False, size))
    return sorted(entries.values(), key=lambda entry: entry.path)


def get_owned_artifact(*, owner: ArtifactOwner, path: str) -> Artifact:
    """One file of a run or a logged model, for download; a folder or a missing path is a 404."""
    artifact = _owned_artifacts(owner).filter(path=path).first()
    if artifact is None:
        label = f"run {owner.uuid}" if isinstance(owner, Run) else f"logged model {owner.model_id}"
        raise NotFound(f"{label} has no artifact at {path!r}", field="path")
    return artifact
