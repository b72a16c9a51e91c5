"""Storing the files of a run or of a logged model in Django storage with their size and sha256.

A run and a logged model keep their files the same way (an `Artifact` row per file, the bytes
in storage), so one pair of services serves both owners.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import IO, Any, Protocol, TypeGuard

from django.conf import settings
from django.core.files import File
from django.db import transaction

from audit.services import record_event
from config.exceptions import Conflict, NotFound, TooLarge
from tracker.models import Artifact, ArtifactOwner, Run
from tracker.permissions import Level, require_run_permission
from tracker.validation import validate_artifact_path

from .logged_models import ensure_logged_model_writable
from .runs import ensure_run_writable

_CHUNK = 1024 * 1024
# A body that cannot be rewound stays in memory up to this size, then spills to a temporary file.
_SPOOL_IN_MEMORY = 8 * 1024 * 1024
_UNITS = ((1024**4, "TiB"), (1024**3, "GiB"), (1024**2, "MiB"), (1024, "KiB"))


class Upload(Protocol):
    """What an upload must offer: a file, an uploaded form file, or a request body."""

    def read(self, n: int = -1, /) -> bytes: ...


def _readable_bytes(count: int) -> str:
    """5368709120 → '5 GiB'; the exact count follows when the short form is rounded."""
    for unit, name in _UNITS:
        if count >= unit:
            short = f"{count / unit:.1f}".removesuffix(".0") + f" {name}"
            return short if count * 10 % unit == 0 else f"{short} ({count:,} bytes)"
    return "1 byte" if count == 1 else f"{count:,} bytes"


def _refuse_if_too_large(path: str, size: int) -> None:
    """The one rule on an artifact's size: MAX_ARTIFACT_BYTES, where 0 means no limit."""
    limit = settings.MAX_ARTIFACT_BYTES
    if limit and size > limit:
        message = f"artifact {path!r} is larger than the limit of {_readable_bytes(limit)}"
        raise TooLarge(message, field="body")


def _digest(stream: Upload, *, path: str, copy_to: IO[bytes] | None = None) -> tuple[int, str]:
    limit = settings.MAX_ARTIFACT_BYTES
    sha = hashlib.sha256()
    size = 0
    # Never ask for more than one byte past the limit: an oversized body is refused after
    # limit + 1 bytes, however large it is.
    while chunk := stream.read(min(_CHUNK, limit + 1 - size) if limit else _CHUNK):
        size += len(chunk)
        _refuse_if_too_large(path, size)
        sha.update(chunk)
        if copy_to is not None:
            copy_to.write(chunk)
    return size, sha.hexdigest()


def _can_rewind(stream: Upload) -> TypeGuard[IO[bytes]]:
    seekable = getattr(stream, "seekable", None)  # a request body has no seek at all
    return bool(seekable and seekable())


@contextmanager
def _read_upload(content: Upload, *, path: str) -> Iterator[tuple[IO[bytes], int, str]]:
    """The upload as a file that can be read again for storage, with its size and sha256.

    A file is hashed where it is; a request body is copied to a temporary file as it is
    hashed, so the body is read once and never held whole in memory.
    """
    if _can_rewind(content):
        content.seek(0)
        size, sha256 = _digest(content, path=path)
        content.seek(0)
        yield content, size, sha256
        return
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY) as spool:
        size, sha256 = _digest(content, path=path, copy_to=spool)
        spool.seek(0)
        yield spool, size, sha256


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


def _refuse_file_folder_clash(owner: ArtifactOwner, path: str) -> None:
    """A path is either a file or a folder: `a/x.txt` cannot be stored beside a file `a`, nor a
    file `a` beside a folder `a/` (storage would fail on it, and listings could not show both)."""
    parents = [path.rsplit("/", depth)[0] for depth in range(1, path.count("/") + 1)]
    owned = Artifact.objects.filter(**_owner_filter(owner))
    clash = owned.filter(path__in=parents).values_list("path", flat=True).first()
    if clash is not None:
        raise Conflict(f"{path!r} needs a folder {clash!r}, but {clash!r} is a file", field="path")
    if owned.filter(path__startswith=path + "/").exists():
        raise Conflict(f"{path!r} is a folder of {_owner_label(owner)}'s artifacts, not a file", field="path")


def store_artifact(
    *, actor: Any, owner: ArtifactOwner, path: str, content: Upload, declared_size: int | None = None
) -> Artifact:
    """Save a file under a run or a logged model; a file already at that path is replaced, as
    MLflow does. `declared_size` (a request's Content-Length) lets an oversized upload be
    refused before any of it is read."""
    require_run_permission(actor, owner, Level.EDIT, action="Uploading an artifact")
    _ensure_writable(owner)
    path = validate_artifact_path(path)
    if declared_size is not None:
        _refuse_if_too_large(path, declared_size)
    _refuse_file_folder_clash(owner, path)
    # Every refusal (role, path, size) happens before this block: nothing is stored or audited.
    with _read_upload(content, path=path) as (upload, size, sha256), transaction.atomic():
        artifact = Artifact.objects.select_for_update().filter(**_owner_filter(owner), path=path).first()
        before = {"size": artifact.size, "sha256": artifact.sha256} if artifact else None
        old_name = artifact.file.name if artifact else None
        if artifact is None:
            artifact = Artifact(**_owner_filter(owner), path=path)
        artifact.size, artifact.sha256 = size, sha256
        # A fresh storage name each time, so the old file stays valid until the commit succeeds.
        try:
            artifact.file.save(path.rsplit("/", 1)[-1], File(upload), save=False)
        except (NotADirectoryError, IsADirectoryError, FileExistsError):
            # Only when a concurrent upload made the clash that _refuse_file_folder_clash checks.
            raise Conflict(
                f"{path!r} clashes with a file or folder stored at the same time", field="path"
            ) from None
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
    require_run_permission(actor, owner, Level.MANAGE, action="Deleting an artifact")
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
