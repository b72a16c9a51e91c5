"""Reads of bulk uploads: one by id, and the latest ones, optionally of one experiment or run."""

from __future__ import annotations

from django.db.models import QuerySet

from config.exceptions import InvalidInput, NotFound
from tracker.models import BulkUpload, Experiment, Run

MAX_UPLOADS_LISTED = 200


def _uploads() -> QuerySet[BulkUpload]:
    return BulkUpload.objects.select_related("run", "experiment", "created_by")


def get_upload(*, upload_id: int | str) -> BulkUpload:
    if not str(upload_id).isdigit():
        raise InvalidInput(f"{upload_id!r} is not an upload id", field="upload_id")
    upload = _uploads().filter(pk=int(upload_id)).first()
    if upload is None:
        raise NotFound(f"upload {upload_id} does not exist", field="upload_id")
    return upload


def list_uploads(
    *, experiment: Experiment | None = None, run: Run | None = None, limit: int = 50
) -> list[BulkUpload]:
    """Newest first; an upload to one run belongs to that run's experiment too."""
    uploads = _uploads()
    if experiment is not None:
        uploads = uploads.filter(experiment=experiment)
    if run is not None:
        uploads = uploads.filter(run=run)
    return list(uploads[: max(1, min(limit, MAX_UPLOADS_LISTED))])
