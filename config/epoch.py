"""Times on the wire are integer milliseconds since the Unix epoch (MLflow's convention, which the
native API follows too); these are the one conversion both ways and its limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MS = timedelta(milliseconds=1)
# 9999-12-31T23:59:59.999Z, the last instant a Python datetime can hold.
MAX_EPOCH_MS = 253_402_300_799_999


def to_ms(moment: datetime) -> int:
    """A datetime as whole milliseconds since the epoch (rounded down)."""
    return (moment - EPOCH) // ONE_MS


def from_ms(milliseconds: int) -> datetime:
    """Milliseconds since the epoch as an aware UTC datetime; OverflowError beyond year 9999
    (callers that take the number from a client check it against MAX_EPOCH_MS, or catch that)."""
    return EPOCH + timedelta(milliseconds=milliseconds)
