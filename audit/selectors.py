"""Reads of the audit trail: search, per-object history, export, checkpoints, last check."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import QuerySet

from .chain import ChainEvent
from .models import AuditCheckpoint, AuditEvent, AuditVerification
from .visibility import visible_events


@dataclass(frozen=True)
class EventFilter:
    """What the audit page, the search API and the export narrow the trail by; empty = all."""

    actor: str = ""
    action: str = ""
    object_type: str = ""
    object_ids: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None

    @property
    def is_empty(self) -> bool:
        return self == EventFilter()


@dataclass(frozen=True)
class EventPage:
    events: list[AuditEvent]
    next_before: int | None  # pass as `before` for the next (older) page; None on the last


def filter_events(*, filters: EventFilter, reader: Any) -> QuerySet[AuditEvent]:
    """Events matching every given filter that `reader` may read (audit.visibility); each
    filter has an index that leads with it."""
    events = visible_events(AuditEvent.objects.all(), reader=reader)
    if filters.actor:
        events = events.filter(actor_name=filters.actor)
    if filters.action:
        events = events.filter(action=filters.action)
    if filters.object_type:
        events = events.filter(object_type=filters.object_type)
    if filters.object_ids:
        events = events.filter(object_id__in=filters.object_ids)
    if filters.since is not None:
        events = events.filter(created_at__gte=filters.since)
    if filters.until is not None:
        events = events.filter(created_at__lt=filters.until)
    return events


def events_after(*, filters: EventFilter, after_sequence: int, reader: Any) -> QuerySet[AuditEvent]:
    """Matching events in chain order after `after_sequence` (the API's oldest-first paging)."""
    events = filter_events(filters=filters, reader=reader)
    return events.filter(sequence__gt=after_sequence).order_by("sequence")


def event_page(*, filters: EventFilter, before: int | None, limit: int, reader: Any) -> EventPage:
    """Newest first, keyset-paged on sequence, so page 10,000 costs what page 1 does."""
    events = filter_events(filters=filters, reader=reader)
    if before is not None:
        events = events.filter(sequence__lt=before)
    rows = list(events.order_by("-sequence")[: limit + 1])
    return EventPage(rows[:limit], rows[limit - 1].sequence if len(rows) > limit else None)


def object_history(*, object_type: str, object_ids: Sequence[str], limit: int) -> list[AuditEvent]:
    """An object's events, newest first; several ids find it under each name it had."""
    return list(
        AuditEvent.objects.filter(object_type=object_type, object_id__in=list(object_ids)).order_by(
            "-sequence"
        )[:limit]
    )


def export_events(*, filters: EventFilter, reader: Any, batch_size: int = 2000) -> Iterator[ChainEvent]:
    """Matching sealed events in chain order, streamed from a cursor: never all in memory.

    Unsealed events have no hash to verify yet; the sealer covers them within seconds.
    """
    rows = (
        filter_events(filters=filters, reader=reader)
        .filter(hash__isnull=False)
        .order_by("sequence")
        .values_list(*ChainEvent._fields)
    )
    for row in rows.iterator(chunk_size=batch_size):
        yield ChainEvent(*row)


def unsealed_count() -> int:
    """Events committed but not yet linked into the chain (the sealer runs every few seconds)."""
    return AuditEvent.objects.awaiting_seal().count()


def list_checkpoints(*, limit: int) -> list[AuditCheckpoint]:
    """The newest checkpoints first."""
    return list(AuditCheckpoint.objects.order_by("-sequence", "-id")[:limit])


def get_checkpoint(*, checkpoint_id: int) -> AuditCheckpoint | None:
    return AuditCheckpoint.objects.filter(pk=checkpoint_id).first()


def all_checkpoints() -> Iterator[AuditCheckpoint]:
    """Every checkpoint in chain order, for the download of the whole set."""
    return AuditCheckpoint.objects.order_by("sequence", "id").iterator(chunk_size=1000)


def latest_verification() -> AuditVerification | None:
    """The newest finished check: what the audit page and `GET /api/v1/audit/verify` show."""
    return (
        AuditVerification.objects.filter(
            status__in=[AuditVerification.Status.DONE, AuditVerification.Status.FAILED]
        )
        .order_by("-finished_at", "-id")
        .first()
    )


def pending_verification() -> AuditVerification | None:
    return (
        AuditVerification.objects.filter(
            status__in=[AuditVerification.Status.PENDING, AuditVerification.Status.RUNNING]
        )
        .order_by("-id")
        .first()
    )
