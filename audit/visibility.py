"""Which events a user may read. The trail is shared, but the objects it names are not: an event
about an experiment, a run or a model says what the object holds (params, names, a request's
justification), so it is shown only to those who may read that object. Events about no such
object (users, tokens, the chain's own checks) are everyone's, as is the whole trail to those
who read everything (admins). Some events are the admins' alone, whatever they are about: what
only admins manage (webhooks, whose URLs name internal hosts) and account security (a lockout
names the client's address and the account under attack).

The audit app imports no app that owns objects: each registers, for its object types, the ids
(as events name them) that a user may read, and which object types or actions only admins read.
Registration happens in the apps' `ready()`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.db.models import Q, QuerySet

from accounts.permissions import reads_everything

from .models import AuditEvent

# The ids, as events name them, of this type's objects the user may read (a one-column queryset,
# evaluated inside the events' query).
ReadableIds = Callable[[Any], QuerySet[Any]]
# Whether anything of an app's objects is closed to the user (one small query at most).
ClosesAny = Callable[[Any], bool]

_GROUPS: list[tuple[ClosesAny, dict[str, ReadableIds]]] = []
_ADMINS_ONLY_TYPES: set[str] = set()
_ADMINS_ONLY_ACTIONS: set[str] = set()


def show_readable(closes_any: ClosesAny, readable_ids: dict[str, ReadableIds]) -> None:
    """Register an app's object types: how to find those of each that a user may read, and
    whether any of them is closed to the user at all."""
    _GROUPS.append((closes_any, readable_ids))


def show_admins_only(*, object_types: Iterable[str] = (), actions: Iterable[str] = ()) -> None:
    """Register events only admins read: every event about these object types, and every event
    with these actions (whatever its object)."""
    _ADMINS_ONLY_TYPES.update(object_types)
    _ADMINS_ONLY_ACTIONS.update(actions)


def visible_events(events: QuerySet[AuditEvent], *, reader: Any) -> QuerySet[AuditEvent]:
    """`events` less the admins' own and those about objects `reader` may not read. Where
    nothing of an app is closed to them (the usual case) its types cost nothing; otherwise only
    the objects they may read now pass, so one deleted since, or named as older events named
    it, does not."""
    if reads_everything(reader):
        return events
    if _ADMINS_ONLY_TYPES or _ADMINS_ONLY_ACTIONS:
        events = events.exclude(
            Q(object_type__in=sorted(_ADMINS_ONLY_TYPES)) | Q(action__in=sorted(_ADMINS_ONLY_ACTIONS))
        )
    for closes_any, readable_ids in _GROUPS:
        if closes_any(reader):
            for object_type, readable in readable_ids.items():
                events = events.filter(~Q(object_type=object_type) | Q(object_id__in=readable(reader)))
    return events
