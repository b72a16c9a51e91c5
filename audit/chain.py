"""Walking the hash chain against signed checkpoints; no Django, so exports verify offline.

The server (`audit.verification`) feeds it rows from the database; `audit.offline_verify` feeds
it lines of an export. Both get the same answers and the same messages.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from .checkpoint_format import Head
from .hashing import GENESIS_HASH, canonical_json, event_hash

MISSING = "event is missing"
BROKEN_LINK = "previous_hash does not match the event before"
EDITED = "content does not match its hash (edited)"
UNSEALED_BELOW_HEAD = "event has no hash but lies below the sealed head (its seal was removed)"


class ChainEvent(NamedTuple):
    """The fields an event's hash covers, plus its link and its own hash."""

    sequence: int
    created_at: datetime
    actor_name: str
    action: str
    object_type: str
    object_id: str
    before: Any
    after: Any
    previous_hash: str
    hash: str


class TrustedHead(NamedTuple):
    """A head from a checkpoint whose signature already held; `label` names it in messages."""

    label: str
    head: Head


@dataclass(frozen=True)
class ChainBreak:
    sequence: int
    reason: str


@dataclass(frozen=True)
class ChainReport:
    checked: int
    broken: ChainBreak | None
    last_sequence: int = 0
    last_hash: str = GENESIS_HASH
    checkpoints_checked: int = 0
    unsealed: int = 0  # events committed but not sealed yet: not covered by this check

    @property
    def ok(self) -> bool:
        return self.broken is None


def rewritten(label: str, sequence: int) -> str:
    return f"hash differs from the one {label} signed (history rewritten at or before #{sequence})"


def walk_chain(
    events: Iterable[ChainEvent],
    *,
    first_sequence: int = 1,
    previous_hash: str | None = GENESIS_HASH,
    checkpoints: Sequence[TrustedHead] = (),
) -> ChainReport:
    """Recompute each hash in order and hold each checkpointed position to its signed hash.

    Sequence numbers rise but may skip (a transaction that rolled back used its number); the
    links, not the numbers, show a missing event. `previous_hash=None` starts mid-chain,
    trusting the first event's link: the caller then passes a checkpoint at `first_sequence`,
    which pins that event's hash instead.
    """
    signed: dict[int, list[TrustedHead]] = {}
    for trusted in checkpoints:
        signed.setdefault(trusted.head.sequence, []).append(trusted)
    positions = sorted(signed)
    next_position = 0  # index into positions of the lowest signed position not yet passed
    anchored = previous_hash is None
    expected, checked, last_hash = first_sequence, 0, previous_hash or GENESIS_HASH
    seen_checkpoints = 0

    def report(broken: ChainBreak | None) -> ChainReport:
        return ChainReport(checked, broken, expected - 1, last_hash, seen_checkpoints)

    for event in events:
        if event.sequence < expected or (anchored and checked == 0 and event.sequence != expected):
            reason = MISSING if event.sequence > expected else "event is out of order or repeated"
            return report(ChainBreak(expected, reason))
        while next_position < len(positions) and positions[next_position] < event.sequence:
            # A signed position the walk skipped: that event was removed (and later ones relinked).
            skipped = positions[next_position]
            if skipped >= expected:
                return report(ChainBreak(skipped, f"{MISSING}: {signed[skipped][0].label} signed #{skipped}"))
            next_position += 1
        recomputed = event_hash(
            sequence=event.sequence,
            created_at=event.created_at,
            actor_name=event.actor_name,
            action=event.action,
            object_type=event.object_type,
            object_id=event.object_id,
            before=event.before,
            after=event.after,
            previous_hash=event.previous_hash,
        )
        if previous_hash is not None and event.previous_hash != previous_hash:
            if recomputed == event.hash and event.sequence > expected:
                # An intact event linking to something that is no longer before it: a number
                # in the gap below it was an event, and it was removed.
                return report(ChainBreak(expected, MISSING))
            return report(ChainBreak(event.sequence, BROKEN_LINK))
        if recomputed != event.hash:
            return report(ChainBreak(event.sequence, EDITED))
        for trusted in signed.get(event.sequence, ()):
            if trusted.head.hash != event.hash:
                return report(ChainBreak(event.sequence, rewritten(trusted.label, event.sequence)))
            seen_checkpoints += 1
        previous_hash = last_hash = event.hash
        expected = event.sequence + 1
        checked += 1
    # Deleting the newest events leaves a chain that links perfectly; only a signed head that
    # reaches further than what is left shows the cut.
    beyond = [t for t in checkpoints if t.head.sequence >= expected]
    if beyond:
        furthest = max(beyond, key=lambda t: t.head.sequence)
        return report(
            ChainBreak(
                expected,
                f"{MISSING}: {furthest.label} signed the chain up to #{furthest.head.sequence}",
            )
        )
    return report(None)


# The export: one record per event, the same columns in CSV and JSON lines. The server writes it
# with `export_record`; the offline verifier reads it back with `event_from_record`.
EXPORT_COLUMNS = (
    "sequence",
    "created_at",
    "actor",
    "action",
    "object_type",
    "object_id",
    "before",
    "after",
    "previous_hash",
    "hash",
)


def export_record(event: ChainEvent) -> dict[str, Any]:
    """An event as exported; `created_at` keeps the microseconds its hash covers."""
    return {
        "sequence": event.sequence,
        "created_at": event.created_at.isoformat(timespec="microseconds"),
        "actor": event.actor_name,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "before": event.before,
        "after": event.after,
        "previous_hash": event.previous_hash,
        "hash": event.hash,
    }


class ExportFormatError(ValueError):
    """An export record that cannot be read; the message names the field."""


def event_from_record(record: dict[str, Any], *, json_cells: bool = False) -> ChainEvent:
    """Read an exported record back; `json_cells` for CSV, where before/after are JSON text."""
    # A short CSV line leaves its last columns as None.
    missing = [
        column
        for column in EXPORT_COLUMNS
        if record.get(column) is None and column not in ("before", "after")
    ]
    missing += [
        column
        for column in ("before", "after")
        if column not in record or (json_cells and record[column] is None)
    ]
    if missing:
        raise ExportFormatError(f"{missing[0]}: missing")
    try:
        sequence = int(record["sequence"])
    except (TypeError, ValueError):
        raise ExportFormatError(f"sequence: {record['sequence']!r} is not an integer") from None
    try:
        created_at = datetime.fromisoformat(str(record["created_at"]))
    except ValueError:
        raise ExportFormatError(f"created_at: {record['created_at']!r} is not an ISO 8601 time") from None
    data = {}
    for column in ("before", "after"):
        value = record[column]
        if json_cells:
            try:
                value = json.loads(value)
            except ValueError:
                raise ExportFormatError(f"{column}: not JSON") from None
        data[column] = value
    text = {}
    for column in ("actor", "action", "object_type", "object_id", "previous_hash", "hash"):
        if not isinstance(record[column], str):
            raise ExportFormatError(f"{column}: not a string")
        text[column] = record[column]
    return ChainEvent(
        sequence=sequence,
        created_at=created_at,
        actor_name=text["actor"],
        action=text["action"],
        object_type=text["object_type"],
        object_id=text["object_id"],
        before=data["before"],
        after=data["after"],
        previous_hash=text["previous_hash"],
        hash=text["hash"],
    )


# A spreadsheet runs a cell that starts with one of these as a formula. The CSV export quotes
# such cells with a leading apostrophe (and doubles a leading apostrophe), and the reader takes
# exactly one off again, so the export stays safe to open and still verifies.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "'")


def csv_cell(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def csv_cell_text(cell: str) -> str:
    return cell[1:] if cell.startswith("'") else cell


def csv_row(event: ChainEvent) -> list[str | int]:
    """An event as a CSV row in EXPORT_COLUMNS order; before/after as canonical JSON text."""
    record = export_record(event)
    record["before"], record["after"] = canonical_json(event.before), canonical_json(event.after)
    return [record[c] if c == "sequence" else csv_cell(record[c]) for c in EXPORT_COLUMNS]


def record_from_csv(row: dict[str, str | None]) -> dict[str, str | None]:
    return {key: csv_cell_text(value) if isinstance(value, str) else value for key, value in row.items()}
