"""Checks the audit chain in the database against its signed checkpoints.

The walk itself is `audit.chain.walk_chain`, shared with the offline verifier; this module
feeds it the database's events and every checkpoint whose signature holds: the rows in the
database and the copies kept outside it (a deleted checkpoint row is still found in the file).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from .chain import MISSING, UNSEALED_BELOW_HEAD, ChainBreak, ChainEvent, ChainReport, TrustedHead, walk_chain
from .checkpoint_format import SignedCheckpoint
from .checkpoints import parse_stored, read_outside_database, trusted_keys
from .hashing import GENESIS_HASH
from .models import AuditChainHead, AuditCheckpoint, AuditEvent

__all__ = ["ChainBreak", "ChainReport", "verify_chain"]

_FIELDS = ChainEvent._fields


def _events(first: int, through: int | None, batch_size: int) -> Iterator[ChainEvent]:
    rows = AuditEvent.objects.filter(sequence__gte=first, hash__isnull=False)
    if through is not None:
        rows = rows.filter(sequence__lte=through)
    for row in rows.order_by("sequence").values_list(*_FIELDS).iterator(chunk_size=batch_size):
        yield ChainEvent(*row)


def _signed_checkpoints(since_sequence: int) -> list[tuple[str, SignedCheckpoint]]:
    """Checkpoints at or after `since_sequence`, from the database and from outside it, once each."""
    found = [
        (f"checkpoint {row.pk}", parse_stored(row))
        for row in AuditCheckpoint.objects.filter(sequence__gte=since_sequence).order_by("sequence", "id")
    ]
    found += [item for item in read_outside_database() if item[1].main_head.sequence >= since_sequence]
    unique: dict[str, tuple[str, SignedCheckpoint]] = {}
    for label, checkpoint in found:
        unique.setdefault(checkpoint.signature, (label, checkpoint))
    return list(unique.values())


def verify_chain(
    *, since: AuditCheckpoint | None = None, through: int | None = None, batch_size: int = 2000
) -> ChainReport:
    """Walk the chain (from `since`'s position, or from the start) and hold it to the checkpoints.

    Names the first position that does not hold: an edited event, a broken link, a hash that
    differs from a signed one, a cut below the newest signed head, or a forged checkpoint. It
    walks sealed events only and counts the unsealed ones; callers that want those covered
    seal first (audit.sealing.seal_events). An unsealed event below the sealed head is a break:
    the sealer never leaves one, so its hash was removed.
    """
    first = since.sequence if since is not None else 1
    keys = trusted_keys()
    trusted: list[TrustedHead] = []
    for label, checkpoint in _signed_checkpoints(first):
        problem = checkpoint.signature_problem(keys)
        if problem is not None:
            return ChainReport(0, ChainBreak(checkpoint.main_head.sequence, f"{label}: {problem}"))
        trusted.append(TrustedHead(label, checkpoint.main_head))
    if since is not None and not any(t.head.sequence == first for t in trusted):
        # The anchor row no longer parses to a checkpoint at its own position: start over.
        return verify_chain(through=through, batch_size=batch_size)
    report = walk_chain(
        _events(first, through, batch_size),
        first_sequence=first,
        previous_hash=None if since is not None else GENESIS_HASH,
        checkpoints=trusted,
    )
    head = AuditChainHead.objects.filter(id=1).values_list("sequence", flat=True).first() or 0
    # The walk skips unsealed events, so it sees a stripped hash only as a gap (or not at all, at
    # the head); say what happened to that event.
    last = head if through is None else min(head, through)
    below = AuditEvent.objects.filter(hash__isnull=True, sequence__gte=first, sequence__lte=last)
    stripped = below.order_by("sequence").values_list("sequence", flat=True).first()
    if stripped is not None and (report.broken is None or stripped <= report.broken.sequence):
        report = replace(report, broken=ChainBreak(stripped, UNSEALED_BELOW_HEAD))
    if report.broken is None and through is None and head > report.last_sequence:
        # Removing the newest events leaves a valid prefix; the head remembers how far it went.
        report = replace(report, broken=ChainBreak(report.last_sequence + 1, MISSING))
    return replace(report, unsealed=AuditEvent.objects.awaiting_seal(after=head).count())
