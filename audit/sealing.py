"""Sealing: linking and hashing committed audit events in sequence order, after their commit.

Writers never touch the chain head (audit.services.record_event inserts events unsealed), so
concurrent transactions commit in parallel. The one rule that keeps the chain honest: never seal
past a number that a still-running transaction may yet commit, or that transaction's event would
land below the sealed head. On PostgreSQL every writer takes its number through the database
function `audit_next_sequence()` (migration 0005), which first holds a shared advisory lock on
a floor (the sequence's value just before it) until the writer's transaction ends. The sealer
reads the sequence's last value S, then the floors in pg_locks; every number at or below S was
handed out before that read, so its writer either still shows its floor, or has already
committed (its event is visible) or rolled back (its number is a gap forever). Sealing below
min(S + 1, lowest floor) is therefore final. Advisory locks are per database, so a long
transaction in another database of the same server never holds sealing back.

On SQLite one transaction writes at a time, so record_event seals inline before its commit.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import connection, transaction

from .hashing import GENESIS_HASH, event_hash
from .models import AuditChainHead, AuditEvent

# The first half of the writers' advisory lock key ("LLAW"); migration 0005 uses the same value.
WRITER_LOCK_KEY = 0x4C4C4157
# Held by a sealer for its transaction, so two sealers never link the same events ("LLAS").
SEALER_LOCK_KEY = 0x4C4C4153
# Floors are keyed by their low 31 bits (an advisory key half is an int4).
_FLOOR_MODULUS = 1 << 31
SEAL_BATCH = 5000

_TABLE = AuditEvent._meta.db_table
_HEAD_TABLE = AuditChainHead._meta.db_table
# The columns event_hash covers, besides the link.
_HASHED_FIELDS = (
    "sequence",
    "created_at",
    "actor_name",
    "action",
    "object_type",
    "object_id",
    "before",
    "after",
)
_SEAL_ONE = f"UPDATE {_TABLE} SET previous_hash = %s, hash = %s, sealed_at = %s WHERE id = %s"
_SEAL_ALL = (
    f"UPDATE {_TABLE} AS event SET previous_hash = link.previous_hash, hash = link.hash, sealed_at = %s "
    "FROM unnest(%s::bigint[], %s::text[], %s::text[]) AS link(id, previous_hash, hash) "
    "WHERE event.id = link.id"
)
_RUNNING_FLOORS = (
    "SELECT objid FROM pg_locks WHERE locktype = 'advisory' AND classid = %s AND objsubid = 2 "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND pid IS DISTINCT FROM pg_backend_pid()"
)


@dataclass(frozen=True)
class SealResult:
    sealed: int
    head_sequence: int
    head_hash: str
    unsealed: int  # events still waiting (for a running transaction below them, or the next batch)


def _decode_floor(objid: int, last_value: int) -> int:
    """The floor a writer locked, from its low 31 bits: the value at or just below last_value."""
    reference = last_value + (1 << 20)  # a floor read a moment after last_value was
    return reference - ((reference - objid) % _FLOOR_MODULUS)


def postgres_horizon() -> int:
    """The lowest sequence not yet safe to seal: every event below it is final (see the module)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT last_value FROM audit_event_sequence")
        (last_value,) = cursor.fetchone()
        # A separate statement, so pg_locks is read after the sequence (see the module docstring).
        cursor.execute(_RUNNING_FLOORS, [WRITER_LOCK_KEY])
        floors = [_decode_floor(int(objid), last_value) for (objid,) in cursor.fetchall()]
    return min([last_value + 1, *floors])


def _link(rows: list[dict[str, Any]], head_hash: str) -> list[tuple[str, str, int]]:
    """(previous_hash, hash, id) for each row, chained on from the head in sequence order."""
    linked, previous = [], head_hash
    for row in rows:
        event_id = row.pop("id")
        digest = event_hash(previous_hash=previous, **row)
        linked.append((previous, digest, event_id))
        previous = digest
    return linked


def seal_batch(*, limit: int = SEAL_BATCH) -> SealResult:
    """Seal up to `limit` final events after the head, in the caller's (or a new) transaction.

    Sealing in a writer's own transaction is safe: its own events are final for it, and its
    seal commits or rolls back with them. The sealer lock keeps a second sealer out.
    """
    postgres = connection.vendor == "postgresql"
    with transaction.atomic(), connection.cursor() as cursor:
        if postgres:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, 0)", [SEALER_LOCK_KEY])
            horizon = postgres_horizon()
        else:
            horizon = 1 << 62  # one writer at a time: everything visible is final
        lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
        cursor.execute(f"SELECT sequence, hash FROM {_HEAD_TABLE} WHERE id = 1{lock}")
        row = cursor.fetchone()
        if row is None:  # a database whose data migration has not run (tests that flush tables)
            AuditChainHead.objects.get_or_create(id=1)
            row = (0, GENESIS_HASH)
        head_sequence, head_hash = row
        # Read through the ORM, as the verifier reads: the hash covers the values it will see.
        # An unsealed event below the head (a stripped hash) is not the sealer's to mend; the
        # verifier names it as the break.
        waiting = AuditEvent.objects.awaiting_seal(after=head_sequence).filter(sequence__lt=horizon)
        rows = list(waiting.order_by("sequence").values("id", *_HASHED_FIELDS)[:limit])
        if rows:
            linked = _link(rows, head_hash)
            sealed_at = datetime.now(UTC)
            if postgres:  # one statement for the batch
                previous_hashes, digests, ids = (list(column) for column in zip(*linked, strict=True))
                cursor.execute(_SEAL_ALL, [sealed_at, ids, previous_hashes, digests])
            else:
                seals = [(previous, digest, sealed_at, event_id) for previous, digest, event_id in linked]
                cursor.executemany(_SEAL_ONE, seals)
            head_sequence, head_hash = rows[-1]["sequence"], linked[-1][1]
            cursor.execute(
                f"UPDATE {_HEAD_TABLE} SET sequence = %s, hash = %s WHERE id = 1", [head_sequence, head_hash]
            )
        unsealed = AuditEvent.objects.awaiting_seal(after=head_sequence).count()
    return SealResult(len(rows), head_sequence, head_hash, unsealed)


def seal_events(*, batch: int = SEAL_BATCH) -> SealResult:
    """Seal every event that is final now, a batch per transaction (the sealer's entry point)."""
    sealed = 0
    while True:
        result = seal_batch(limit=batch)
        sealed += result.sealed
        if result.sealed < batch:
            return SealResult(sealed, result.head_sequence, result.head_hash, result.unsealed)


def seal_forever(*, interval: float, stop: threading.Event) -> int:
    """`manage.py seal_audit --loop`: seal, sleep, repeat until `stop` is set (a sealer beside or
    instead of beat); the number of seals. `stop` is looked at between seals, so a seal in
    progress always finishes, within `interval` of being set. It is set from a signal handler,
    so this never waits on it: `Event.wait` holds the event's lock, which the handler's `set`
    would then wait for forever."""
    passes = 0
    while not stop.is_set():
        seal_events()
        passes += 1
        time.sleep(interval)
    return passes
