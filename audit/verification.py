"""Walks the audit chain and reports the first event whose hash or link does not hold."""

from __future__ import annotations

from dataclasses import dataclass

from .hashing import GENESIS_HASH, event_hash
from .models import AuditChainHead, AuditEvent


@dataclass(frozen=True)
class ChainBreak:
    sequence: int
    reason: str


@dataclass(frozen=True)
class ChainReport:
    checked: int
    broken: ChainBreak | None

    @property
    def ok(self) -> bool:
        return self.broken is None


def verify_chain(*, batch_size: int = 2000) -> ChainReport:
    """Recompute every hash in sequence order; stop at the first mismatch."""
    previous_hash = GENESIS_HASH
    expected_sequence = 1
    checked = 0
    events = AuditEvent.objects.order_by("sequence").iterator(chunk_size=batch_size)
    for event in events:
        if event.sequence != expected_sequence:
            return ChainReport(checked, ChainBreak(expected_sequence, "event is missing"))
        if event.previous_hash != previous_hash:
            return ChainReport(
                checked, ChainBreak(event.sequence, "previous_hash does not match the event before")
            )
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
            return ChainReport(
                checked, ChainBreak(event.sequence, "content does not match its hash (edited)")
            )
        previous_hash = event.hash
        expected_sequence += 1
        checked += 1
    head = AuditChainHead.objects.filter(id=1).first()
    if head is not None and head.sequence > checked:
        # Removing the newest events leaves a valid prefix; the head remembers how far it went.
        return ChainReport(checked, ChainBreak(checked + 1, "event is missing"))
    return ChainReport(checked, None)
