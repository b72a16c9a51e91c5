"""The only writer of audit events."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, models, transaction
from django.utils import timezone

from accounts.roles import Role, require_role
from config.exceptions import Conflict
from config.json_values import json_safe

from .checkpoint_format import MAIN_CHAIN, CheckpointFormatError, Head, sign_heads
from .checkpoints import signing_key, write_outside_database
from .models import AuditChainHead, AuditCheckpoint, AuditEvent, AuditVerification
from .sealing import seal_batch, seal_events
from .verification import verify_chain

SYSTEM_ACTOR = "system"
STALE_CHECK_AFTER = timedelta(hours=1)


# Audit data must be plain JSON whatever a service hands over: NaN/Infinity become strings, keys
# and other objects their str() (config/json_values.py).
_json_safe = partial(json_safe, stringify=True)


# The columns a writer fills; the sealer fills previous_hash, hash and sealed_at later.
_WRITTEN_FIELDS = [
    field
    for field in AuditEvent._meta.concrete_fields
    if not field.primary_key and field.name not in ("sequence", "previous_hash", "hash", "sealed_at")
]
_NEXT_SEQUENCE = {
    # A database sequence hands out numbers without a lock; the function also leaves the floor
    # the sealer needs in pg_locks (audit.sealing, migration 0005).
    "postgresql": "audit_next_sequence()",
    # One writer at a time on SQLite, and the event is sealed before the commit anyway.
    "sqlite": f"(SELECT COALESCE(MAX(sequence), 0) + 1 FROM {AuditEvent._meta.db_table})",
}


def _event_values(
    *,
    actor: Any,
    action: str,
    target: models.Model | None,
    object_type: str | None,
    object_id: str | None,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> dict[str, Any]:
    """The columns a writer fills, by field name, as the event will hold them (`before` and
    `after` as plain JSON; see `_as_stored` for the values a JSON column reads back)."""
    if target is not None:
        object_type = object_type or target._meta.label_lower
        object_id = object_id or str(getattr(target, "audit_id", target.pk))
    if not object_type or object_id is None:
        raise ValueError("record_event needs a target or an object_type and object_id")
    return {
        "created_at": datetime.now(UTC),
        "actor": actor.pk if getattr(actor, "pk", None) else None,
        "actor_name": getattr(actor, "username", None) or SYSTEM_ACTOR,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "before": _json_safe(before),
        "after": _json_safe(after),
    }


def _as_stored(data: Any) -> Any:
    """Plain JSON data as the JSON column returns it (tuples as lists, enum members as their
    values): what an event object built without reading it back must hold."""
    return json.loads(json.dumps(data))


def _insert_event(values: dict[str, Any]) -> AuditEvent:
    """Insert the event unsealed with one plain statement; no row of the chain is locked.

    Every write on every path ends here, so it skips the ORM's create machinery, which measured
    a millisecond slower per event; the fields still prepare each value for the backend.
    """
    params = [field.get_db_prep_save(values[field.name], connection) for field in _WRITTEN_FIELDS]
    columns = ", ".join(["sequence", *(f.column for f in _WRITTEN_FIELDS)])
    placeholders = ", ".join([_NEXT_SEQUENCE[connection.vendor], *(["%s"] * len(_WRITTEN_FIELDS))])
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {AuditEvent._meta.db_table} ({columns}) VALUES ({placeholders}) "
            "RETURNING id, sequence",
            params,
        )
        event_id, sequence = cursor.fetchone()
    actor_id = values.pop("actor")
    event = AuditEvent(id=event_id, sequence=sequence, actor_id=actor_id, **values)
    event._state.adding, event._state.db = False, connection.alias
    return event


def record_event(
    *,
    actor: Any,
    action: str,
    target: models.Model | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add one event, unsealed, inside the caller's transaction.

    Callers are services, which call this in the same transaction as the change it records,
    so an event exists exactly when its change was committed. The sealer links and hashes it
    after the commit (audit.sealing); on SQLite it is sealed here, before the commit.
    """
    values = _event_values(
        actor=actor,
        action=action,
        target=target,
        object_type=object_type,
        object_id=object_id,
        before=before,
        after=after,
    )
    values["before"], values["after"] = _as_stored(values["before"]), _as_stored(values["after"])
    # No savepoint: a failure here must roll back the caller's change with it anyway.
    with transaction.atomic(savepoint=False):
        event = _insert_event(values)
        if connection.vendor != "postgresql":
            seal_batch()  # one writer at a time: every event it can see is final
    return event


def event_insert_sql(*, prefix: str, computed: dict[str, str] | None = None) -> str:
    """An INSERT … SELECT of one unsealed event from the named parameters of `event_params`,
    for a PostgreSQL statement that writes a change and its event together (a data-modifying
    CTE; tracker.services.single_point, registry's model versions). `computed` replaces fields'
    parameters with expressions that may read the statement's other parts (what it really
    inserted: a count, the id or number the database gave a new row)."""
    computed = computed or {}
    columns = ", ".join(["sequence", *(f.column for f in _WRITTEN_FIELDS)])
    values = [computed.get(field.name, f"%({prefix}{field.name})s") for field in _WRITTEN_FIELDS]
    return (
        f"INSERT INTO {AuditEvent._meta.db_table} ({columns}) "
        f"SELECT {_NEXT_SEQUENCE['postgresql']}, {', '.join(values)}"
    )


def event_params(
    *,
    prefix: str,
    actor: Any,
    action: str,
    target: models.Model | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    after: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The parameters `event_insert_sql` names, prepared exactly as `record_event` prepares them
    (a target not inserted yet is named by `object_type` and a placeholder `object_id` that the
    statement computes). No event object is built here, so `before` and `after` are not read
    back through JSON first: they are sent as the same JSON text either way."""
    values = _event_values(
        actor=actor,
        action=action,
        target=target,
        object_type=object_type,
        object_id=object_id,
        before=None,
        after=after,
    )
    return {
        f"{prefix}{field.name}": field.get_db_prep_save(values[field.name], connection)
        for field in _WRITTEN_FIELDS
    }


def record_chain_verification(*, checked: int, broken_sequence: int | None, reason: str | None) -> AuditEvent:
    """Write the result of a chain check into the chain itself, so checks are part of the trail."""
    after: dict[str, Any] = {"checked": checked}
    if broken_sequence is not None:
        after.update(broken_sequence=broken_sequence, reason=reason)
    return record_event(
        actor=None,
        action="audit.chain_verified" if broken_sequence is None else "audit.chain_broken",
        object_type="audit.chain",
        object_id="main",
        after=after,
    )


def request_verification(*, actor: User, full: bool = False) -> tuple[AuditVerification, bool]:
    """Queue a check of the chain, or return the one already waiting; True when newly queued.

    A check records its result in the chain, so it is a write (contributor role); a waiting
    check is shared rather than letting repeated clicks queue one full walk each.
    """
    require_role(actor, Role.CONTRIBUTOR, action="Checking the audit chain")
    mode = AuditVerification.Mode.FULL if full else AuditVerification.Mode.INCREMENTAL
    # A check whose worker died leaves its row waiting forever; past this age it is not shared.
    fresh = timezone.now() - STALE_CHECK_AFTER
    waiting = AuditVerification.objects.filter(
        mode=mode,
        status__in=[AuditVerification.Status.PENDING, AuditVerification.Status.RUNNING],
        created_at__gte=fresh,
    ).first()
    if waiting is not None:
        return waiting, False
    from .tasks import verify_audit_chain  # the task module imports this one

    verification = AuditVerification.objects.create(mode=mode, requested_by=actor)
    transaction.on_commit(partial(verify_audit_chain.delay, verification.pk))
    return verification, True


def _anchor_for(verification: AuditVerification) -> AuditCheckpoint | None:
    """The newest checkpoint that an earlier successful check already walked past.

    None (the whole chain) for a full check, and after a check that failed: a break found below
    the anchor would otherwise be walked past by the next incremental check, which would then
    pass and turn every page green over an event still edited. Only a passing walk of the whole
    chain lets incremental checks resume.
    """
    if verification.mode == AuditVerification.Mode.FULL:
        return None
    finished = AuditVerification.objects.filter(
        status__in=(AuditVerification.Status.DONE, AuditVerification.Status.FAILED)
    ).exclude(pk=verification.pk)
    last_ok = finished.order_by("-id").first()
    if last_ok is None or not last_ok.ok:
        return None
    return (
        AuditCheckpoint.objects.filter(sequence__lte=last_ok.through_sequence)
        .order_by("-sequence", "-id")
        .first()
    )


def check_chain(*, full: bool = False) -> AuditVerification:
    """Check the chain now, as the scheduled checks do (incremental unless `full`): the check's
    row and its event in the chain, without a requester."""
    mode = AuditVerification.Mode.FULL if full else AuditVerification.Mode.INCREMENTAL
    return run_verification(verification=AuditVerification.objects.create(mode=mode))


def run_verification(*, verification: AuditVerification) -> AuditVerification:
    """Run a queued check, keep its result on the row, and record it in the chain as well."""
    anchor = _anchor_for(verification)
    seal_events()  # so the check covers what has committed
    AuditVerification.objects.filter(pk=verification.pk).update(status=AuditVerification.Status.RUNNING)
    try:
        report = verify_chain(since=anchor)
    except (CheckpointFormatError, OSError, ImproperlyConfigured) as error:
        # A checkpoint copy that cannot be read is itself a finding: keep it on the row.
        verification.status, verification.ok, verification.reason = (
            AuditVerification.Status.FAILED,
            False,
            str(error),
        )
        verification.finished_at = timezone.now()
        verification.save()
        return verification
    broken = report.broken
    verification.status = AuditVerification.Status.DONE
    verification.ok = broken is None
    verification.anchor = anchor
    verification.from_sequence = anchor.sequence if anchor is not None else 1
    verification.through_sequence = report.last_sequence
    verification.checked = report.checked
    verification.checkpoints_checked = report.checkpoints_checked
    verification.broken_sequence = broken.sequence if broken else None
    verification.reason = broken.reason if broken else ""
    verification.finished_at = timezone.now()
    with transaction.atomic():
        verification.save()
        record_chain_verification(
            checked=report.checked,
            broken_sequence=broken.sequence if broken else None,
            reason=broken.reason if broken else None,
        )
    return verification


def make_checkpoint() -> AuditCheckpoint | None:
    """Verify the chain since the last checkpoint, then sign its head; None if nothing is new.

    Signing a head vouches for everything before it, so a rewritten stretch must never be
    signed: the walk from the previous checkpoint comes first, and a break refuses the signature.
    The events committed so far are sealed first, so the signed head covers them.
    """
    seal_events()
    head = AuditChainHead.objects.filter(id=1).values_list("sequence", "hash").first()
    if head is None or head[0] == 0:
        return None
    latest = AuditCheckpoint.objects.order_by("-sequence", "-id").first()
    if latest is not None and latest.sequence == head[0] and latest.hash == head[1]:
        return None
    report = verify_chain(since=latest, through=head[0])
    if report.broken is not None:
        # Kept as a finished check, so the audit page shows the break before the next scheduled one.
        AuditVerification.objects.create(
            status=AuditVerification.Status.DONE,
            ok=False,
            anchor=latest,
            from_sequence=latest.sequence if latest is not None else 1,
            through_sequence=report.last_sequence,
            checked=report.checked,
            checkpoints_checked=report.checkpoints_checked,
            broken_sequence=report.broken.sequence,
            reason=report.broken.reason,
            finished_at=timezone.now(),
        )
        raise Conflict(
            f"refusing to sign the chain head #{head[0]}: event #{report.broken.sequence} "
            f"{report.broken.reason}",
            field="audit.chain",
        )
    signed = sign_heads(
        private_key=signing_key(),
        heads=[Head(MAIN_CHAIN, head[0], head[1])],
        signed_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    with transaction.atomic():
        checkpoint = AuditCheckpoint.objects.create(
            created_at=datetime.fromisoformat(signed.signed_at),
            sequence=head[0],
            hash=head[1],
            key_id=signed.key_id,
            document=signed.as_json(),
        )
        # Inside the transaction: if the copy cannot be written, no row claims a checkpoint
        # that exists only in the database the checkpoint is meant to guard.
        write_outside_database(signed)
    return checkpoint
