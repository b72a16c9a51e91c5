"""Storing the files of a run or of a logged model in Django storage with their size and sha256.

A run and a logged model keep their files the same way (an `Artifact` row per file, the bytes
in storage), so one pair of services serves both owners.
"""

from __future__ import annotations

import hashlib
from functools import partial
from typing import IO, Any

from django.core.files import File
from django.db import transaction

from accounts.roles import Role, require_role
from audit.services import record_event
from config.exceptions import NotFound
from tracker.models import Artifact, ArtifactOwner, Run
from tracker.validation import validate_artifact_path

from .logged_models import ensure_logged_model_writable
from .runs import ensure_run_writable

_CHUNK = 1024 * 1024


def _digest(stream: IO[bytes]) -> tuple[int, str]:
    sha = hashlib.sha256()
    size = 0
    stream.seek(0)
    while chunk := stream.read(_CHUNK):
        sha.update(chunk)
        size += len(chunk)
    stream.seek(0)
    return size, sha.hexdigest()


def _owner_filter(owner: ArtifactOwner) -> dict[str, ArtifactOwner]:
    return {"run": owner} if isinstance(owner, Run) else {"logged_model": owner}


def _ensure_writable(owner: ArtifactOwner) -> None:
    if isinstance(owner, Run):
        ensure_run_writable(owner)
    else:
        ensure_logged_model_writable(owner)


def _owner_label(owner: ArtifactOwner) -> str:
    """How messages name an artifact owner: `run <uuid>` or `logged model <model_id>`."""
    return f"run {owner.uuid}" if isinstance(owner, Run) else f"logged model {owner.model_id}"


def _audit_prefix(owner: ArtifactOwner) -> str:
    return "run" if isinstance(owner, Run) else "logged_model"


def store_artifact(*, actor: Any, owner: ArtifactOwner, path: str, content: IO[bytes]) -> Artifact:
    """Save a file under a run or a logged model; a file already at that path is replaced, as
    MLflow does."""
    require_role(actor, Role.CONTRIBUTOR, action="Uploading an artifact")
    _ensure_writable(owner)
    path = validate_artifact_path(path)
    size, sha256 = _digest(content)
    with transaction.atomic():
        artifact = Artifact.objects.select_for_update().filter(**_owner_filter(owner), path=path).first()
        before = {"size": artifact.size, "sha256": artifact.sha256} if artifact else None
        old_name = artifact.file.name if artifact else None
        if artifact is None:
            artifact = Artifact(**_owner_filter(owner), path=path)
        artifact.size, artifact.sha256 = size, sha256
        # A fresh storage name each time, so the old file stays valid until the commit succeeds.
        artifact.file.save(path.rsplit("/", 1)[-1], File(content), save=False)
        storage, new_name = artifact.file.storage, artifact.file.name
        try:
            artifact.save()
            record_event(
                actor=actor,
                action=f"{_audit_prefix(owner)}.artifact_stored",
                target=owner,
                before={path: before} if before else None,
                after={path: {"size": size, "sha256": sha256}},
            )
        except Exception:
            storage.delete(new_name)  # nobody can see this file without its row
            raise
        if old_name and old_name != new_name:
            transaction.on_commit(lambda: storage.delete(old_name))
    return artifact


def _delete_files(storage: Any, names: list[str]) -> None:
    for name in names:
        storage.delete(name)


def delete_artifact(*, actor: Any, owner: ArtifactOwner, path: str) -> None:
    """Remove a file (or every file under a folder path) of a run or a logged model."""
    require_role(actor, Role.CONTRIBUTOR, action="Deleting an artifact")
    _ensure_writable(owner)
    path = validate_artifact_path(path)
    owned = Artifact.objects.filter(**_owner_filter(owner))
    with transaction.atomic():
        doomed = list(owned.filter(path=path)) or list(owned.filter(path__startswith=path.rstrip("/") + "/"))
        if not doomed:
            raise NotFound(f"{_owner_label(owner)} has no artifact at {path!r}", field="path")
        names = [a.file.name for a in doomed]
        storage = doomed[0].file.storage
        Artifact.objects.filter(pk__in=[a.pk for a in doomed]).delete()
        record_event(
            actor=actor,
            action=f"{_audit_prefix(owner)}.artifact_deleted",
            target=owner,
            before={"paths": [a.path for a in doomed]},
        )
        transaction.on_commit(partial(_delete_files, storage, names))
