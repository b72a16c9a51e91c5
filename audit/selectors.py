"""Reads of the audit trail."""

from __future__ import annotations

from django.db.models import QuerySet

from .models import AuditEvent


def list_events(
    *, object_type: str = "", object_id: str = "", action: str = "", actor: str = "", after_sequence: int = 0
) -> QuerySet[AuditEvent]:
    """Events in chain order after `after_sequence`, narrowed by any of the given filters."""
    events = AuditEvent.objects.filter(sequence__gt=after_sequence)
    if object_type:
        events = events.filter(object_type=object_type)
    if object_id:
        events = events.filter(object_id=object_id)
    if action:
        events = events.filter(action=action)
    if actor:
        events = events.filter(actor_name=actor)
    return events.order_by("sequence")
