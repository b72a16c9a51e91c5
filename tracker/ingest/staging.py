"""The staging table of one upload attempt: filled chunk by chunk, moved into the point table at once.

A table per attempt (not one shared table) so that dropping it is instant and a worker that
lost its lease can never write into the next attempt's rows. On PostgreSQL it is UNLOGGED
(nothing in it must survive a crash: the attempt starts again) and filled by binary COPY; on
SQLite by executemany. Neither has an index: a point repeated in the file is dropped at the move.
"""

from __future__ import annotations

import numpy as np
from django.db import IntegrityError, connection, transaction

from tracker.models import MetricPoint
from tracker.services.key_sets import record_metric_keys_of
from tracker.services.metric_store import summary_merge_sql
from tracker.services.rollups import SCRATCH_COLUMNS, finest_rollups_sql, merge_rollups_from_scratch

_POINTS = MetricPoint._meta.db_table
_COLUMNS = "run_id, key_id, step, timestamp, value, is_nan"
_PREFIX = "tracker_upload_staging"

# PostgreSQL's binary COPY row as a packed big-endian record: the field count, then each
# column as (byte length, value). numpy writes a whole batch of them in one call.
_COPY_ROW = np.dtype(
    [
        ("fields", ">i2"),
        ("run_len", ">i4"), ("run_id", ">i8"),
        ("key_len", ">i4"), ("key_id", ">i4"),
        ("step_len", ">i4"), ("step", ">i8"),
        ("ts_len", ">i4"), ("timestamp", ">i8"),
        ("value_len", ">i4"), ("value", ">f8"),
        ("nan_len", ">i4"), ("is_nan", "?"),
    ]
)  # fmt: skip
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_COPY_TRAILER = b"\xff\xff"


def staging_table_name(*, upload_id: int, attempt: int) -> str:
    return f"{_PREFIX}_{int(upload_id)}_{int(attempt)}"


def create_staging_table(name: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {name}")
        if connection.vendor == "postgresql":
            cursor.execute(
                f"CREATE UNLOGGED TABLE {name} (run_id bigint, key_id integer, step bigint, "
                "timestamp bigint, value double precision, is_nan boolean)"
            )
        else:
            cursor.execute(
                f"CREATE TABLE {name} (run_id bigint, key_id integer, step bigint, timestamp bigint, "
                "value real, is_nan bool)"
            )


def drop_staging_tables(*, upload_id: int, below_attempt: int | None = None) -> None:
    """Drop the upload's staging tables (those of earlier attempts only, when `below_attempt`)."""
    with connection.cursor() as cursor:
        names = [
            name
            for name in connection.introspection.table_names(cursor)
            if name.startswith(f"{_PREFIX}_{int(upload_id)}_")
        ]
        for name in names:
            attempt = int(name.rsplit("_", 1)[-1])
            if below_attempt is None or attempt < below_attempt:
                cursor.execute(f"DROP TABLE IF EXISTS {name}")


def append_rows(
    name: str,
    *,
    run_ids: np.ndarray,
    key_ids: np.ndarray,
    steps: np.ndarray,
    timestamps: np.ndarray,
    values: np.ndarray,
    is_nan: np.ndarray,
) -> None:
    """Append one validated batch (in its own short transaction: the caller runs in autocommit)."""
    if connection.vendor == "postgresql":
        rows = np.empty(len(steps), dtype=_COPY_ROW)
        rows["fields"] = 6
        rows["run_len"], rows["key_len"], rows["step_len"] = 8, 4, 8
        rows["ts_len"], rows["value_len"], rows["nan_len"] = 8, 8, 1
        rows["run_id"], rows["key_id"], rows["step"] = run_ids, key_ids, steps
        rows["timestamp"], rows["value"], rows["is_nan"] = timestamps, values, is_nan
        with (
            connection.cursor() as cursor,
            cursor.cursor.copy(f"COPY {name} ({_COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy,
        ):
            copy.write(_COPY_HEADER)
            copy.write(rows.tobytes())
            copy.write(_COPY_TRAILER)
        return
    batch = list(
        zip(
            run_ids.tolist(),
            key_ids.tolist(),
            steps.tolist(),
            timestamps.tolist(),
            values.tolist(),
            is_nan.tolist(),
            strict=True,
        )
    )
    # One transaction per batch (in autocommit SQLite would commit every row), through the sqlite3
    # cursor itself: Django's wrapper, in its DEBUG form above all, costs more than the insert.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.cursor.executemany(f"INSERT INTO {name} ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)", batch)


def _summary_source(points: str) -> str:
    """Per (run, key) of the table `points`: the newest point by (step, timestamp, value) as MLflow
    orders them, min and max (NaN excluded) and the count, in key order (see move_staged_points).

    The newest point is looked for only among the points at each key's last step: ranking them all
    would sort every row of the file.
    """
    return f"""
        SELECT a.run_id, a.key_id, CASE WHEN l.is_nan THEN NULL ELSE l.value END, l.is_nan, l.step,
               l.timestamp, a.min_value, a.max_value, a.n
        FROM (
            SELECT run_id, key_id, count(*) AS n, max(step) AS last_step,
                   min(CASE WHEN is_nan THEN NULL ELSE value END) AS min_value,
                   max(CASE WHEN is_nan THEN NULL ELSE value END) AS max_value
            FROM {points} GROUP BY run_id, key_id
        ) AS a
        JOIN (
            SELECT p.run_id, p.key_id, p.step, p.timestamp, p.value, p.is_nan, row_number() OVER (
                PARTITION BY p.run_id, p.key_id ORDER BY p.timestamp DESC, p.value DESC, p.is_nan DESC
            ) AS newest
            FROM {points} AS p
            JOIN (SELECT run_id, key_id, max(step) AS step FROM {points} GROUP BY run_id, key_id) AS m
                ON p.run_id = m.run_id AND p.key_id = m.key_id AND p.step = m.step
        ) AS l ON l.run_id = a.run_id AND l.key_id = a.key_id AND l.newest = 1
        WHERE true
        ORDER BY a.run_id, a.key_id
    """


def move_staged_points(name: str, *, staged_rows: int) -> int:
    """Insert the staged points that are new and fold exactly those into the summaries, the
    charts' rollups and the experiments' metric key sets.

    Call inside the final transaction. Summaries, then rollups, are merged in (run, key) order,
    the order every metric batch takes their row locks in, so the two can never deadlock.
    """
    rollups = f"{name}_rollups"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The summary and rollup aggregates group millions of points: with the default 4 MB
            # PostgreSQL sorts them on disk instead of hashing them, and it misjudges the rollups'
            # join of every point with its bucket's extremes (tens of thousands of rows, estimated
            # at one) as cheap to merge: 6.5 s for 2,000,000 points instead of 1.6 s with hashing.
            cursor.execute("SET LOCAL work_mem = '64MB'")
            cursor.execute("SET LOCAL enable_mergejoin = off")
        cursor.execute(f"CREATE TEMPORARY TABLE {rollups} ({SCRATCH_COLUMNS})")
        inserted = _insert_new_points(cursor, name, rollups=rollups, staged_rows=staged_rows)
        merge_rollups_from_scratch(scratch=rollups)
        record_metric_keys_of(pairs_sql=f"SELECT DISTINCT run_id, key_id FROM {rollups}")
        cursor.execute(f"DROP TABLE {rollups}")
    return inserted


def _insert_new_points(cursor, name: str, *, rollups: str, staged_rows: int) -> int:
    """The point-table insert and the summary merge; the new points' finest rollups go to `rollups`."""
    if connection.vendor == "postgresql":
        # Usually every staged point is new: a plain INSERT (half the time of ON CONFLICT's
        # speculative insertion) in a savepoint, then the summaries from the staging table.
        # Any point already stored, or repeated in the file, breaks the key: exact path below.
        try:
            with transaction.atomic():
                cursor.execute(f"INSERT INTO {_POINTS} ({_COLUMNS}) SELECT {_COLUMNS} FROM {name}")
            cursor.execute(summary_merge_sql(source=_summary_source(name)))
            cursor.execute(f"INSERT INTO {rollups} {finest_rollups_sql(points=name)}")
            return staged_rows
        except IntegrityError:
            pass
        # Otherwise one statement: the points really inserted (ON CONFLICT skips those already
        # stored, and a point repeated in the file) feed the summary merge directly.
        merge = summary_merge_sql(source=_summary_source("inserted")).strip()
        cursor.execute(
            f"""
            WITH inserted AS (
                INSERT INTO {_POINTS} ({_COLUMNS}) SELECT {_COLUMNS} FROM {name}
                ON CONFLICT DO NOTHING RETURNING {_COLUMNS}
            ), merged AS ({merge} RETURNING 1),
            rolled AS (INSERT INTO {rollups} {finest_rollups_sql(points="inserted")} RETURNING 1)
            SELECT count(*) FROM inserted
            """
        )
        return int(cursor.fetchone()[0])
    # SQLite holds one writer at a time, so the staged points not stored yet stay new until COMMIT:
    # drop those already stored (the point table's key finds them), then the file's repeats.
    cursor.execute(
        f"DELETE FROM {name} AS s WHERE EXISTS (SELECT 1 FROM {_POINTS} AS p WHERE p.run_id = s.run_id "
        "AND p.key_id = s.key_id AND p.step = s.step AND p.timestamp = s.timestamp "
        "AND p.value = s.value AND p.is_nan = s.is_nan)"
    )
    cursor.execute(
        f"DELETE FROM {name} WHERE rowid NOT IN (SELECT min(rowid) FROM {name} GROUP BY {_COLUMNS})"
    )
    cursor.execute(f"INSERT INTO {_POINTS} ({_COLUMNS}) SELECT {_COLUMNS} FROM {name}")
    inserted = cursor.rowcount
    cursor.execute(summary_merge_sql(source=_summary_source(name)))
    cursor.execute(f"INSERT INTO {rollups} {finest_rollups_sql(points=name)}")
    return int(inserted)
