"""Moves metric points into the big table in bulk, never row by row.

PostgreSQL gets COPY (the fastest path the database offers). A batch that repeats points
already stored (a client retrying after a lost response) makes COPY hit the primary key; it is
then inserted again with ON CONFLICT DO NOTHING, so the retry adds nothing. Other engines use
multi-row INSERT … ON CONFLICT DO NOTHING directly. Both return only the rows really inserted,
so summaries count each point once.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import IntegrityError, connection, transaction

from tracker.models import MetricPoint

# (key_id, step, timestamp, value, is_nan) — the run is the same for the whole batch.
PointRow = tuple[int, int, int, float, bool]

_TABLE = MetricPoint._meta.db_table
_COLUMNS = "run_id, key_id, step, timestamp, value, is_nan"
# SQLite allows 32766 bound variables per statement; six per row.
_INSERT_CHUNK = 5000


def insert_points(*, run_id: int, rows: Sequence[PointRow]) -> list[PointRow]:
    """Insert distinct rows for one run; return those that were not stored already."""
    if not rows:
        return []
    if connection.vendor == "postgresql":
        import psycopg

        try:
            with transaction.atomic():  # savepoint: a duplicate must not abort the caller's transaction
                _copy_points(run_id, rows)
            return list(rows)
        except (IntegrityError, psycopg.errors.UniqueViolation):
            pass
    return _insert_points_skipping_duplicates(run_id, rows)


def _copy_points(run_id: int, rows: Sequence[PointRow]) -> None:
    with connection.cursor() as cursor:
        raw_cursor = cursor.cursor  # the psycopg cursor under Django's wrapper
        statement = f"COPY {_TABLE} ({_COLUMNS}) FROM STDIN (FORMAT BINARY)"
        with raw_cursor.copy(statement) as copy:
            copy.set_types(["int8", "int4", "int8", "int8", "float8", "bool"])
            write_row = copy.write_row
            for key_id, step, timestamp, value, is_nan in rows:
                write_row((run_id, key_id, step, timestamp, value, is_nan))


def _insert_points_skipping_duplicates(run_id: int, rows: Sequence[PointRow]) -> list[PointRow]:
    inserted: list[PointRow] = []
    with connection.cursor() as cursor:
        for start in range(0, len(rows), _INSERT_CHUNK):
            chunk = rows[start : start + _INSERT_CHUNK]
            placeholders = ",".join(["(%s,%s,%s,%s,%s,%s)"] * len(chunk))
            params: list[object] = []
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
