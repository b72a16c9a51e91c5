"""Walking the hash chain against signed checkpoints; no Django, so exports verify offline.

The server (`audit.verification`) feeds it rows from the database; `audit.offline_verify` feeds
it lines of an export. Both get the same answers and the same messages.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from .checkpoint_format import Head
from .hashing import GENESIS_HASH, event_hash

MISSING = "event is missing"
BROKEN_LINK = "previous_hash does not match the event before"
EDITED = "content does not match its hash (edited)"


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

    `previous_hash=None` starts mid-chain, trusting the first event's link: the caller then
    passes a checkpoint at `first_sequence`, which pins that event's hash instead.
    """
    signed: dict[int, list[TrustedHead]] = {}
    for trusted in checkpoints:
        signed.setdefault(trusted.head.sequence, []).append(trusted)
    expected, checked, last_hash = first_sequence, 0, previous_hash or GENESIS_HASH
    seen_checkpoints = 0

    def report(broken: ChainBreak | None) -> ChainReport:
        return ChainReport(checked, broken, expected - 1, last_hash, seen_checkpoints)

    for event in events:
        if event.sequence != expected:
            reason = MISSING if event.sequence > expected else "event is out of order or repeated"
            return report(ChainBreak(expected, reason))
        if previous_hash is not None and event.previous_hash != previous_hash:
            return report(ChainBreak(event.sequence, BROKEN_LINK))
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
        if recomputed != event.hash:
            return report(ChainBreak(event.sequence, EDITED))
        for trusted in signed.get(event.sequence, ()):
            if trusted.head.hash != event.hash:
                return report(ChainBreak(event.sequence, rewritten(trusted.label, event.sequence)))
            seen_checkpoints += 1
        previous_hash = last_hash = event.hash
        expected += 1
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
