"""Audit events of registry objects: identified by stable id, named in their data."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User

from audit.services import record_event
from registry.models import ModelVersion, RegisteredModel


def _names(target: RegisteredModel | ModelVersion) -> dict[str, Any]:
    if isinstance(target, RegisteredModel):
        return {"model": target.name}
    return {"model": target.model.name, "version": target.version}


def named(target: RegisteredModel | ModelVersion, data: dict[str, Any] | None) -> dict[str, Any]:
    """An event's data with the names a reader needs in front (the model's, a version's number)."""
    return {**_names(target), **(data or {})}


def record_registry_event(
    *,
    actor: User | None,
    action: str,
    target: RegisteredModel | ModelVersion,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """Record an event on a registry object under its stable id ("id:<pk>", which a rename never
    changes), with the names a reader needs in its data: a history page finds the event by id
    and still shows what the object was called when it happened."""
    if after is not None or before is None:
        after = named(target, after)
    else:
        before = named(target, before)
    record_event(actor=actor, action=action, target=target, before=before, after=after)
