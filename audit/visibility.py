"""Which events a user may read. The trail is shared, but the objects it names are not: an event
about an experiment, a run or a model says what the object holds (params, names, a request's
justification), so it is shown only to those who may read that object. Events about no such
object (users, tokens, the chain's own checks) are everyone's, as is the whole trail to those
who read everything (admins).

The audit app imports no app that owns objects: each registers, for its object types, the ids
(as events name them) that a user may not read. Registration happens in the apps' `ready()`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db.models import QuerySet

from accounts.permissions import reads_everything

from .models import AuditEvent

# The ids, as events name them, of this type's objects the user may not read (a one-column
# queryset, evaluated inside the events' query), or None when none is closed to them.
HiddenIds = Callable[[Any], QuerySet[Any] | None]

_HIDDEN: dict[str, HiddenIds] = {}


def hide_unreadable(object_type: str, hidden_ids: HiddenIds) -> None:
    """Register how to find the objects of `object_type` that a user may not read."""
    _HIDDEN[object_type] = hidden_ids


def visible_events(events: QuerySet[AuditEvent], *, reader: Any) -> QuerySet[AuditEvent]:
    """`events` less those about objects `reader` may not read."""
    if reads_everything(reader):
        return events
    for object_type, hidden_ids in _HIDDEN.items():
        hidden = hidden_ids(reader)
        if hidden is not None:
            events = events.exclude(object_type=object_type, object_id__in=hidden)
    return events
