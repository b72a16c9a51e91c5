"""Reads of what happened to a model over time: alias holders at a moment, the timeline, a
version's lineage ("why this model?"), and where its audit events are."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import User
from django.db.models import Count, Prefetch, Q, QuerySet

from audit.models import AuditEvent
from registry.models import (
    AUDIT_ID_PREFIX,
    AliasHistory,
    ModelVersion,
    PromotionRequest,
    RegisteredModel,
    Review,
)
from tracker.models import Run

_MODEL_TYPE = RegisteredModel._meta.label_lower
_VERSION_TYPE = ModelVersion._meta.label_lower
_RENAMES = ("registered_model.renamed", "registered_model.updated")
_MAX_RENAMES = 1000  # a bound on the walk below; no model is renamed that often


def alias_holders_at(*, model: RegisteredModel, at: datetime) -> list[AliasHistory]:
    """Which version held each alias and stage at `at`: a holding covers [assigned_at,
    removed_at), so at the instant of a move the new holder counts, not the old one."""
    return list(
        AliasHistory.objects.filter(model=model, assigned_at__lte=at)
        .filter(Q(removed_at__isnull=True) | Q(removed_at__gt=at))
        .select_related("version", "assigned_by", "request")
        .order_by("kind", "name")
    )


def alias_timeline(*, model: RegisteredModel) -> QuerySet[AliasHistory]:
    """Every holding of every alias and stage, per label in time order, with the request (and
    whether it was forced) that made it."""
    return (
        AliasHistory.objects.filter(model=model)
        .select_related("version", "assigned_by", "removed_by", "request")
        .order_by("kind", "name", "assigned_at", "pk")
    )


@dataclass(frozen=True)
class Lineage:
    """Why a version is what it is: its run, who registered it, every request with its reviews,
    and each alias or stage it holds or held."""

    version: ModelVersion
    run: Run
    registered_by: User | None
    registered_at: datetime
    requests: Sequence[PromotionRequest]
    holdings: Sequence[AliasHistory]


def lineage_of(*, version: ModelVersion) -> Lineage:
    """The chain behind a version, in four queries."""
    version = ModelVersion.all_objects.select_related(
        "model", "run", "run__experiment", "run__user", "created_by", "logged_model"
    ).get(pk=version.pk)
    requests = list(
        PromotionRequest.objects.filter(version=version)
        .select_related("model", "version", "requester", "previous_version")
        .annotate(approvals=Count("reviews", filter=Q(reviews__decision=Review.Decision.APPROVE)))
        .prefetch_related(Prefetch("reviews", queryset=Review.objects.select_related("reviewer")))
        .order_by("created_at", "pk")
    )
    holdings = list(
        AliasHistory.objects.filter(version=version)
        .select_related("assigned_by", "removed_by", "request")
        .order_by("assigned_at", "pk")
    )
    return Lineage(
        version=version,
        run=version.run,
        registered_by=version.created_by,
        registered_at=version.created_at,
        requests=requests,
        holdings=holdings,
    )


def _names_held(model: RegisteredModel) -> list[tuple[str, int, int | None]]:
    """The names `model` went by, each with the audit sequence range [from, to) it held it.

    Events written before stable ids named a model by its name at the time (a rename event by
    its new name, with the old one in `before`). Walking the renames backwards from today's
    name finds them without ever rewriting an event; bounding each name by sequence keeps a
    name later reused by another model from pulling that model's events in.
    """
    ids = [f"{AUDIT_ID_PREFIX}{model.pk}"]
    name, upper = model.name, None
    held: list[tuple[str, int, int | None]] = []
    for _ in range(_MAX_RENAMES):
        earlier = AuditEvent.objects.filter(object_type=_MODEL_TYPE, object_id__in=[*ids, name])
        if upper is not None:
            earlier = earlier.filter(sequence__lt=upper)
        rename = (
            earlier.filter(action__in=_RENAMES, after__name=name)
            .order_by("-sequence")
            .values_list("sequence", "before")
            .first()
        )
        if rename is None:
            created = (
                earlier.filter(action="registered_model.created")
                .order_by("-sequence")
                .values_list("sequence", flat=True)
                .first()
            )
            held.append((name, created or 0, upper))
            break
        sequence, before = rename
        held.append((name, sequence, upper))
        previous = (before or {}).get("name")
        if not isinstance(previous, str) or previous == name:
            break
        name, upper = previous, sequence
    return held


def _held_q(object_type: str, ids: list[tuple[str, int, int | None]]) -> Q:
    found = Q(pk__in=[])
    for object_id, low, high in ids:
        part = Q(object_type=object_type, object_id=object_id, sequence__gte=low)
        if high is not None:
            part &= Q(sequence__lt=high)
        found |= part
    return found


def audit_object_filter(*, model: RegisteredModel | None = None, version: ModelVersion | None = None) -> Q:
    """The AuditEvent filter for a model's or a version's history, across renames: new events
    by stable id, older ones by each name the model held while it held it."""
    if version is not None:
        held = _names_held(version.model)
        old = [(f"{name}/{version.version}", low, high) for name, low, high in held]
        return Q(object_type=_VERSION_TYPE, object_id=version.audit_id) | _held_q(_VERSION_TYPE, old)
    if model is not None:
        return Q(object_type=_MODEL_TYPE, object_id=model.audit_id) | _held_q(_MODEL_TYPE, _names_held(model))
    raise ValueError("audit_object_filter needs a model or a version")


def audit_events_of(
    *, model: RegisteredModel | None = None, version: ModelVersion | None = None
) -> QuerySet[AuditEvent]:
    """A model's or version's audit events, oldest first."""
    return AuditEvent.objects.filter(audit_object_filter(model=model, version=version)).order_by("sequence")
