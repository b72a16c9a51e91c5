"""SQL for the two metric tables, written by hand because they are the hot path.

Points move into the big table in bulk, never row by row.

PostgreSQL gets COPY (the fastest path the database offers) for 50 points or more. A batch that repeats points
already stored (a client retrying after a lost response) makes COPY hit the primary key; it is
then inserted again with ON CONFLICT DO NOTHING, so the retry adds nothing. Other engines use
multi-row INSERT … ON CONFLICT DO NOTHING directly. Both return only the rows really inserted,
so summaries count each point once.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from enum import Enum
from typing import Any

from django.db import IntegrityError, connection, transaction

from config.db import column_arrays, prepared_cursor
from tracker.models import MetricPoint, MetricSummary

# (key_id, step, timestamp, value, is_nan) — the run is the same for the whole batch.
PointRow = tuple[int, int, int, float, bool]

_TABLE = MetricPoint._meta.db_table
_COLUMNS = "run_id, key_id, step, timestamp, value, is_nan"
# SQLite allows 32766 bound variables per statement; six per row.
_INSERT_CHUNK = 5000
_COPY_MIN_ROWS = 50


class CopyMode(Enum):
    """How `insert_points` may use COPY, which fails on a point already stored."""

    SAVEPOINT = "savepoint"  # inside a savepoint, then point by point if it failed
    BARE = "bare"  # without one: a failure aborts the transaction (PointsAlreadyStored)
    NONE = "none"  # point by point, skipping those already stored


class PointsAlreadyStored(Exception):
    """A bare COPY met a point already stored; the transaction is aborted and must be redone
    with CopyMode.NONE."""


def insert_points(
    *,
    run_id: int,
    rows: Sequence[PointRow],
    copy: CopyMode = CopyMode.SAVEPOINT,
    meanwhile: Callable[[], None] | None = None,
) -> list[PointRow]:
    """Insert distinct rows for one run; return those that were not stored already.

    `meanwhile` runs while PostgreSQL stores a COPY (its rows sent, its result not yet read), so
    the caller's Python work overlaps the database's; it may not touch the database."""
    if not rows:
        return []
    # COPY wins on bulk; for a few points a single INSERT saves the savepoint's round trips.
    if connection.vendor == "postgresql" and len(rows) >= _COPY_MIN_ROWS and copy is not CopyMode.NONE:
        import psycopg

        duplicates = (IntegrityError, psycopg.errors.UniqueViolation)
        if copy is CopyMode.BARE:
            try:
                _copy_points(run_id, rows, meanwhile)
            except duplicates as error:
                raise PointsAlreadyStored(str(error)) from error
            return list(rows)
        try:
            with transaction.atomic():  # savepoint: a duplicate must not abort the caller's transaction
                _copy_points(run_id, rows, meanwhile)
            return list(rows)
        except duplicates:
            pass
    return _insert_points_skipping_duplicates(run_id, rows)


# PostgreSQL's binary COPY format, packed here in one pass: psycopg's write_row, called per
# row, took about 2 ms per 1,000 points. A row is the field count, then each column as
# (byte length, big-endian value): run_id int8, key_id int4, step int8, timestamp int8,
# value float8, is_nan bool.
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_COPY_TRAILER = struct.pack(">h", -1)
_COPY_ROW = struct.Struct(">h iq ii iq iq id i?")


# The statement `copy_payload`'s bytes are sent with (bench/ingest.py's `copy` phase sends it too).
COPY_POINTS_SQL = f"COPY {_TABLE} ({_COLUMNS}) FROM STDIN (FORMAT BINARY)"


def copy_payload(run_id: int, rows: Sequence[PointRow]) -> bytes:
    """The whole binary COPY stream of these points of one run, header and trailer included."""
    pack = _COPY_ROW.pack
    packed = [
        pack(6, 8, run_id, 4, key_id, 8, step, 8, timestamp, 8, value, 1, is_nan)
        for key_id, step, timestamp, value, is_nan in rows
    ]
    return b"".join([_COPY_HEADER, *packed, _COPY_TRAILER])


def _copy_points(run_id: int, rows: Sequence[PointRow], meanwhile: Callable[[], None] | None) -> None:
    data = copy_payload(run_id, rows)
    with connection.cursor() as cursor:
        raw_cursor = cursor.cursor  # the psycopg cursor under Django's wrapper
        with raw_cursor.copy(COPY_POINTS_SQL) as copy:
            copy.write(data)
            if meanwhile is not None:
                meanwhile()


def _insert_points_skipping_duplicates(run_id: int, rows: Sequence[PointRow]) -> list[PointRow]:
    inserted: list[PointRow] = []
    with connection.cursor() as cursor:
        for start in range(0, len(rows), _INSERT_CHUNK):
            chunk = rows[start : start + _INSERT_CHUNK]
            placeholders = ",".join(["(%s,%s,%s,%s,%s,%s)"] * len(chunk))
            params: list[Any] = []
            for key_id, step, timestamp, value, is_nan in chunk:
                params.extend((run_id, key_id, step, timestamp, value, is_nan))
            cursor.execute(
                f"INSERT INTO {_TABLE} ({_COLUMNS}) VALUES {placeholders} "
                "ON CONFLICT DO NOTHING RETURNING key_id, step, timestamp, value, is_nan",
                params,
            )
            inserted.extend(
                (key_id, step, timestamp, value, bool(is_nan))
                for key_id, step, timestamp, value, is_nan in cursor.fetchall()
            )
    return inserted


# (key_id, last_value, last_is_nan, last_step, last_timestamp, min_value, max_value, count)
SummaryRow = tuple[int, float | None, bool, int, int, float | None, float | None, int]

_SUMMARY_TABLE = MetricSummary._meta.db_table
_SUMMARY_COLUMNS = (
    "run_id, key_id, last_value, last_is_nan, last_step, last_timestamp, min_value, max_value, count"
)
# The stored row is `s`, the batch's row `excluded`. The newest point wins by (step, timestamp,
# value), as in MLflow; min and max ignore NULL (NaN). Written with CASE rather than
# LEAST/GREATEST so it means the same on PostgreSQL and SQLite.
_NEWER = (
    "(excluded.last_step, excluded.last_timestamp, COALESCE(excluded.last_value, 0)) > "
    "(s.last_step, s.last_timestamp, COALESCE(s.last_value, 0))"
)
_SUMMARY_UPSERT = f"""
INSERT INTO {_SUMMARY_TABLE} AS s ({{columns}}) {{source}}
ON CONFLICT (run_id, key_id) DO UPDATE SET
    last_value = CASE WHEN {_NEWER} THEN excluded.last_value ELSE s.last_value END,
    last_is_nan = CASE WHEN {_NEWER} THEN excluded.last_is_nan ELSE s.last_is_nan END,
    last_step = CASE WHEN {_NEWER} THEN excluded.last_step ELSE s.last_step END,
    last_timestamp = CASE WHEN {_NEWER} THEN excluded.last_timestamp ELSE s.last_timestamp END,
    min_value = CASE
        WHEN s.min_value IS NULL OR excluded.min_value < s.min_value THEN excluded.min_value
        ELSE s.min_value END,
    max_value = CASE
        WHEN s.max_value IS NULL OR excluded.max_value > s.max_value THEN excluded.max_value
        ELSE s.max_value END,
    count = s.count + excluded.count{{stale}}
"""
_WIDEN_STALE_RANGE = """,
    rollups_stale_from = LEAST(s.rollups_stale_from, excluded.rollups_stale_from),
    rollups_stale_to = GREATEST(s.rollups_stale_to, excluded.rollups_stale_to)"""


def summary_merge_sql(*, source: str, stale_rollups: bool = False) -> str:
    """The summary merge over any row source (VALUES or a SELECT in summary column order), so a
    bulk upload folds its points in by the same rules as every metric batch.

    With `stale_rollups` (PostgreSQL), the source has two more columns, the lowest and highest
    step of points whose rollups the writer left to the fold, and the stored range widens to
    cover them (LEAST and GREATEST skip the NULL of a range not yet open)."""
    if stale_rollups:
        columns = f"{_SUMMARY_COLUMNS}, rollups_stale_from, rollups_stale_to"
        return _SUMMARY_UPSERT.format(columns=columns, source=source, stale=_WIDEN_STALE_RANGE)
    return _SUMMARY_UPSERT.format(columns=_SUMMARY_COLUMNS, source=source, stale="")


# SummaryRow's columns as arrays, after the run id; with the stale step range, two more.
_SUMMARY_ARRAYS = (
    "SELECT %s::bigint, * FROM unnest(%s::int[], %s::float8[], %s::boolean[], %s::bigint[], "
    "%s::bigint[], %s::float8[], %s::float8[], %s::bigint[]{stale})"
)
_SUMMARY_MERGE = summary_merge_sql(source=_SUMMARY_ARRAYS.format(stale=""))
_SUMMARY_MERGE_STALE = summary_merge_sql(
    source=_SUMMARY_ARRAYS.format(stale=", %s::bigint[], %s::bigint[]"), stale_rollups=True
)


def upsert_summaries(
    *, run_id: int, rows: Sequence[SummaryRow], stale_steps: Sequence[tuple[int, int]] | None = None
) -> None:
    """Merge per-key aggregates of a batch into the stored summaries in one statement.

    `stale_steps` (PostgreSQL only, where `rollups.rollups_left_to_fold`): each row's lowest and
    highest step, whose rollups the batch leaves to the fold; the stored stale range widens to
    cover them."""
    if not rows:
        return
    if connection.vendor == "postgresql":
        # One array per column, so the text is the same for every batch and is prepared.
        with prepared_cursor() as cursor:
            if stale_steps is None:
                cursor.execute(_SUMMARY_MERGE, [run_id, *column_arrays(rows)])
            else:
                ranged = [(*row, *steps) for row, steps in zip(rows, stale_steps, strict=True)]
                cursor.execute(_SUMMARY_MERGE_STALE, [run_id, *column_arrays(ranged)])
        return
    placeholders = ",".join(["(%s,%s,%s,%s,%s,%s,%s,%s,%s)"] * len(rows))
    params: list[Any] = []
    for row in rows:
        params.append(run_id)
        params.extend(row)
    with connection.cursor() as cursor:
        cursor.execute(summary_merge_sql(source=f"VALUES {placeholders}"), params)
