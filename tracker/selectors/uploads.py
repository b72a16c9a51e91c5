"""Reads of bulk uploads: one by id, and the latest ones, optionally of one experiment or run.

An upload carries its experiment's permission (it shows the file's name, its counts and errors,
and the run it went to); one whose rows name runs anywhere has no experiment and is its
uploader's (and the admins') alone."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from accounts.permissions import reads_everything
from config.exceptions import InvalidInput, NotFound, PermissionDenied
from tracker.models import BulkUpload, Experiment, Run
from tracker.permissions import Level, readable_experiments_q, require_experiment_permission

MAX_UPLOADS_LISTED = 200


def _uploads() -> QuerySet[BulkUpload]:
    return BulkUpload.objects.select_related("run", "experiment", "created_by")


def _readable_q(user: Any) -> Q:
    if reads_everything(user):
        return Q()
    with_experiment = Q(experiment__isnull=False) & readable_experiments_q(user, path="experiment_id")
    return with_experiment | Q(experiment__isnull=True, created_by=getattr(user, "pk", None))


def get_upload(*, upload_id: int | str, user: Any) -> BulkUpload:
    """One upload `user` may read (403 otherwise, as for the experiment itself)."""
    if not str(upload_id).isdigit():
        raise InvalidInput(f"{upload_id!r} is not an upload id", field="upload_id")
    upload = _uploads().filter(pk=int(upload_id)).first()
    if upload is None:
        raise NotFound(f"upload {upload_id} does not exist", field="upload_id")
    if reads_everything(user):
        return upload
    if upload.experiment is not None:
        require_experiment_permission(user, upload.experiment, Level.READ, action="Reading an upload")
    elif upload.created_by_id != getattr(user, "pk", None):
        raise PermissionDenied(f"upload {upload.pk} names runs of any experiment: only its uploader reads it")
    return upload


def list_uploads(
    *, user: Any, experiment: Experiment | None = None, run: Run | None = None, limit: int = 50
) -> list[BulkUpload]:
    """Those `user` may read, newest first; an upload to one run belongs to that run's experiment."""
    uploads = _uploads().filter(_readable_q(user))
    if experiment is not None:
        uploads = uploads.filter(experiment=experiment)
    if run is not None:
        uploads = uploads.filter(run=run)
    return list(uploads[: max(1, min(limit, MAX_UPLOADS_LISTED))])
