"""Celery tasks of the tracker: thin, they take primary keys and call a service."""

from celery import shared_task
from django.db import InterfaceError, OperationalError

from tracker.services import rollups, uploads


@shared_task(
    name="tracker.ingest_bulk_upload",
    acks_late=True,  # a worker killed mid-file leaves the message to be delivered again
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    max_retries=8,
)
def ingest_bulk_upload(upload_id: int) -> str:
    return uploads.ingest_upload(upload_id=upload_id).status


@shared_task(name="tracker.requeue_stalled_uploads")
def requeue_stalled_uploads() -> int:
    return len(uploads.requeue_stalled_uploads())


@shared_task(name="tracker.fold_stale_rollups")
def fold_stale_rollups() -> int:
    return rollups.fold_all_stale_rollups()
