"""Where an upload's validated points wait until the final transaction: a spool file per attempt.

The stage phase packs every batch into PostgreSQL's binary COPY rows and appends them to a
temporary file (on disk, not in memory), beside each batch's partial aggregates: per (run, key)
the summary (count, min, max, newest point) folded in memory, and per (run, key, bucket) the
finest rollups' aggregate, appended to a second file. Nothing touches the database until the
final transaction, where the point file goes into the point table by ONE COPY inside a
savepoint and the partials are merged into the summaries and rollups — or, when the COPY meets a
point already stored (or a point the file repeats), the exact path: the points go into a
temporary table and `INSERT … ON CONFLICT DO NOTHING RETURNING` feeds only the new ones to the
summary and rollup merges. SQLite always takes the exact path.

Why not a staging table: filling one and then moving its rows wrote every point twice, and the
move (an INSERT … SELECT into the indexed point table) cost more than everything else together.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
from django.db import IntegrityError, connection, transaction

from tracker.models import ROLLUP_WIDTHS, MetricPoint
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

# A finest-rollup partial as a binary COPY row. Binary COPY spells NULL as a length of -1 and no
# bytes, which a fixed-width record cannot; flags say instead which aggregates are there.
_PARTIAL_FIELDS = (
    ("run_id", ">i8", "bigint"),
    ("key_id", ">i4", "integer"),
    ("bucket", ">i8", "bigint"),
    ("count", ">i8", "bigint"),
    ("has_finite", "?", "boolean"),
    ("min_value", ">f8", "double precision"),
    ("min_step", ">i8", "bigint"),
    ("min_timestamp", ">i8", "bigint"),
    ("max_value", ">f8", "double precision"),
    ("max_step", ">i8", "bigint"),
    ("max_timestamp", ">i8", "bigint"),
    ("has_odd", "?", "boolean"),
    ("odd_step", ">i8", "bigint"),
    ("odd_timestamp", ">i8", "bigint"),
    ("odd_value", ">f8", "double precision"),
    ("odd_is_nan", ">i4", "integer"),
)
_PARTIAL_ROW = np.dtype(
    [("fields", ">i2")]
    + [item for name, kind, _ in _PARTIAL_FIELDS for item in ((f"{name}_len", ">i4"), (name, kind))]
)
_READ_ROWS = 100_000  # rows read back from a spool file at a time (SQLite, the exact path)


def staging_table_name(*, upload_id: int, attempt: int) -> str:
    """The name of an attempt's temporary tables (the exact path's points, the partials)."""
    return f"{_PREFIX}_{int(upload_id)}_{int(attempt)}"


def drop_staging_tables(*, upload_id: int, below_attempt: int | None = None) -> None:
    """Drop the upload's staging tables left by earlier attempts (or by the previous design, which
    kept an UNLOGGED table per attempt), all of them when `below_attempt` is None."""
    with connection.cursor() as cursor:
        names = [
            name
            for name in connection.introspection.table_names(cursor)
            if name.startswith(f"{_PREFIX}_{int(upload_id)}_")
        ]
        for name in names:
            attempt = int(name.split("_")[4])
            if below_attempt is None or attempt < below_attempt:
                cursor.execute(f"DROP TABLE IF EXISTS {name}")


@dataclass(frozen=True)
class Points:
    """One validated batch, as arrays of equal length (NaN stored as value 0 with is_nan)."""

    run_ids: np.ndarray
    key_ids: np.ndarray
    steps: np.ndarray
    timestamps: np.ndarray
    values: np.ndarray
    is_nan: np.ndarray


def pack_rows(points: Points) -> bytes:
    """The batch as binary COPY rows (without the header and trailer)."""
    rows = np.empty(len(points.steps), dtype=_COPY_ROW)
    rows["fields"] = 6
    rows["run_len"], rows["key_len"], rows["step_len"] = 8, 4, 8
    rows["ts_len"], rows["value_len"], rows["nan_len"] = 8, 8, 1
    rows["run_id"], rows["key_id"], rows["step"] = points.run_ids, points.key_ids, points.steps
    rows["timestamp"], rows["value"], rows["is_nan"] = points.timestamps, points.values, points.is_nan
    return rows.tobytes()


# (count, min, max, newest as (step, timestamp, value, is_nan)); min and max skip NaN only.
Summary = tuple[int, float | None, float | None, tuple[int, int, float, bool]]


def _codes(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Small integer codes of `values`, in the order of the values, and how many there are."""
    if not len(values) or (values == values[0]).all():  # one run, the usual case: no sort
        return np.zeros(len(values), dtype=np.int64), 1
    distinct, codes = np.unique(values, return_inverse=True)
    return codes.astype(np.int64), len(distinct)


def _starts(ordered: np.ndarray) -> np.ndarray:
    """Where each run of equal values begins in an ordered array."""
    change = np.ones(len(ordered), dtype=bool)
    change[1:] = ordered[1:] != ordered[:-1]
    return np.flatnonzero(change)


def _pick(candidates: np.ndarray, group: np.ndarray, *keys: np.ndarray, last: bool = False) -> np.ndarray:
    """Per group, the candidate row that comes first (or `last`) by `keys`; -1 where a group has
    none. Candidates are few (a group's rows that hold its extreme), so sorting them is cheap."""
    found = np.full(int(group[-1]) + 1 if len(group) else 0, -1, dtype=np.int64)
    rows = np.flatnonzero(candidates)
    if len(rows):
        ranked = rows[np.lexsort((*(key[rows] for key in keys[::-1]), group[rows]))]
        edge = np.ones(len(ranked), dtype=bool)
        if last:
            edge[:-1] = group[ranked][1:] != group[ranked][:-1]
        else:
            edge[1:] = group[ranked][1:] != group[ranked][:-1]
        found[group[ranked[edge]]] = ranked[edge]
    return found


def _group_ids(starts: np.ndarray, size: int) -> np.ndarray:
    return np.repeat(np.arange(len(starts)), np.diff(np.append(starts, size)))


def aggregate(points: Points) -> tuple[bytes, dict[tuple[int, int], Summary]]:
    """One batch's partial aggregates, from one sort of its rows by (run, key, bucket):

    - the finest rollup level's, per (run, key, bucket), as binary COPY rows of `_PARTIAL_ROW`: the
      count, the lowest and highest finite value, each at its earliest (step, timestamp), and the
      earliest NaN/±Infinity point (a bucket spread over several batches has several partials:
      the final merge groups them);
    - the summary's, per (run, key): the count, min and max (NaN excluded) and the newest point
      by (step, timestamp, value, is_nan), as the summary merge orders points.

    Extremes come from `reduceat` over the sorted rows; only the rows holding one are sorted again.
    """
    size = len(points.steps)
    run_codes, runs = _codes(points.run_ids)
    key_codes, keys = _codes(points.key_ids)
    pairs = run_codes * keys + key_codes
    buckets = points.steps // ROLLUP_WIDTHS[0]  # floor division, as the SQL's _floor_div
    offsets = buckets - buckets.min()
    span = int(offsets.max()) + 1
    if runs * keys * span < 2**62:
        # One integer per group; a stable sort is nearly linear on files ordered by step.
        order = np.argsort(pairs * span + offsets, kind="stable")
    else:
        order = np.lexsort((buckets, pairs))
    pair_s, bucket_s = pairs[order], buckets[order]
    steps, timestamps, values, is_nan = (
        points.steps[order], points.timestamps[order], points.values[order], points.is_nan[order]
    )  # fmt: skip
    starts = np.flatnonzero(np.append(True, (pair_s[1:] != pair_s[:-1]) | (bucket_s[1:] != bucket_s[:-1])))
    group = _group_ids(starts, size)
    finite = ~is_nan & np.isfinite(values)
    has_finite = np.add.reduceat(finite, starts) > 0
    lowest = np.minimum.reduceat(np.where(finite, values, np.inf), starts)
    highest = np.maximum.reduceat(np.where(finite, values, -np.inf), starts)
    low = _pick(finite & (values == lowest[group]), group, steps, timestamps)
    high = _pick(finite & (values == highest[group]), group, steps, timestamps)
    odd = _pick(~finite, group, steps, timestamps)
    first = order[starts]
    rows = np.zeros(len(starts), dtype=_PARTIAL_ROW)
    rows["fields"] = len(_PARTIAL_FIELDS)
    for name, kind, _ in _PARTIAL_FIELDS:
        rows[f"{name}_len"] = np.dtype(kind).itemsize
    rows["run_id"], rows["key_id"], rows["bucket"] = (
        points.run_ids[first], points.key_ids[first], buckets[first]
    )  # fmt: skip
    rows["count"] = np.diff(np.append(starts, size))
    has_odd = odd >= 0
    rows["has_finite"], rows["has_odd"] = has_finite, has_odd
    for prefix, at in (("min", low), ("max", high)):
        picked = at[has_finite]
        rows[f"{prefix}_value"][has_finite] = values[picked]
        rows[f"{prefix}_step"][has_finite] = steps[picked]
        rows[f"{prefix}_timestamp"][has_finite] = timestamps[picked]
    picked = odd[has_odd]
    rows["odd_step"][has_odd] = steps[picked]
    rows["odd_timestamp"][has_odd] = timestamps[picked]
    rows["odd_value"][has_odd] = values[picked]
    rows["odd_is_nan"][has_odd] = is_nan[picked]

    pair_starts = _starts(pair_s)
    pair_group = _group_ids(pair_starts, size)
    real = ~is_nan
    counts = np.diff(np.append(pair_starts, size))
    has_real = np.add.reduceat(real, pair_starts) > 0
    lows = np.minimum.reduceat(np.where(real, values, np.inf), pair_starts)
    highs = np.maximum.reduceat(np.where(real, values, -np.inf), pair_starts)
    last_steps = np.maximum.reduceat(steps, pair_starts)
    newest = _pick(steps == last_steps[pair_group], pair_group, timestamps, values, is_nan, last=True)
    summaries: dict[tuple[int, int], Summary] = {}
    for index, start in enumerate(pair_starts.tolist()):
        row, latest = int(order[start]), int(newest[index])
        summaries[(int(points.run_ids[row]), int(points.key_ids[row]))] = (
            int(counts[index]),
            float(lows[index]) if has_real[index] else None,
            float(highs[index]) if has_real[index] else None,
            (int(steps[latest]), int(timestamps[latest]), float(values[latest]), bool(is_nan[latest])),
        )
    return rows.tobytes(), summaries


def merge_summary(into: dict[tuple[int, int], Summary], batch: dict[tuple[int, int], Summary]) -> None:
    """Fold one batch's summaries into those of the batches before it."""
    for pair, (count, low, high, newest) in batch.items():
        found = into.get(pair)
        if found is None:
            into[pair] = (count, low, high, newest)
            continue
        old_count, old_low, old_high, old_newest = found
        into[pair] = (
            old_count + count,
            low if old_low is None or (low is not None and low < old_low) else old_low,
            high if old_high is None or (high is not None and high > old_high) else old_high,
            max(old_newest, newest),
        )


class Spool:
    """An attempt's validated points and partial aggregates, on disk until the final transaction.

    `partials`: whether to compute the partial aggregates, which only PostgreSQL's fast path uses.
    """

    def __init__(self, *, partials: bool) -> None:
        # Closed by close(), which the task calls in a `finally`.
        self.points: IO[bytes] = tempfile.TemporaryFile(prefix="upload-points-")  # noqa: SIM115
        self.partials: IO[bytes] = tempfile.TemporaryFile(prefix="upload-partials-")  # noqa: SIM115
        self.summaries: dict[tuple[int, int], Summary] = {}
        self.rows = 0
        self.partials_wanted = partials

    def add(self, points: Points) -> None:
        """Append a batch (the packing thread calls this, one batch at a time)."""
        if not len(points.steps):
            return
        self.points.write(pack_rows(points))
        if self.partials_wanted:
            partials, summaries = aggregate(points)
            self.partials.write(partials)
            merge_summary(self.summaries, summaries)
        self.rows += len(points.steps)

    def close(self) -> None:
        self.points.close()
        self.partials.close()


def _copy_file(cursor: Any, table: str, columns: str, spooled: IO[bytes]) -> None:
    spooled.seek(0)
    # Through psycopg's own cursor (Django's wrapper has no COPY), its errors mapped to Django's.
    with (
        connection.wrap_database_errors,
        cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT BINARY)") as copy,
    ):
        copy.write(_COPY_HEADER)
        while block := spooled.read(8 * 1024 * 1024):
            copy.write(block)
        copy.write(_COPY_TRAILER)


def _spooled_rows(spooled: IO[bytes]) -> Iterator[np.ndarray]:
    spooled.seek(0)
    while block := spooled.read(_READ_ROWS * _COPY_ROW.itemsize):
        yield np.frombuffer(block, dtype=_COPY_ROW)


def move_spooled_points(spool: Spool, *, name: str, timings: dict[str, float]) -> int:
    """Store the spooled points that are new and fold exactly those into the summaries, the charts'
    rollups and the experiments' metric key sets; return how many were new.

    Call inside the final transaction. Summaries, then rollups, are merged in (run, key) order,
    the order every metric batch takes their row locks in, so the two can never deadlock.
    """
    started = time.perf_counter()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            try:
                # Usually every point is new: one COPY (no speculative insertion, no second copy of
                # the points), and the partials computed while staging are exact.
                with transaction.atomic():
                    _copy_file(cursor, _POINTS, _COLUMNS, spool.points)
            except IntegrityError:
                # A point stored before, or repeated in the file: the exact path below.
                timings["move_refused"] += time.perf_counter() - started
                started = time.perf_counter()
            else:
                timings["move"] += time.perf_counter() - started
                started = time.perf_counter()
                _merge_partials(cursor, spool, name=name)
                timings["summaries"] += time.perf_counter() - started
                return spool.rows
            # The aggregates join millions of points: with the default 4 MB PostgreSQL sorts them on
            # disk instead of hashing them, and misjudges the rollups' join as cheap to merge.
            cursor.execute("SET LOCAL work_mem = '64MB'")
            cursor.execute("SET LOCAL enable_mergejoin = off")
        cursor.execute(f"DROP TABLE IF EXISTS {name}")
        cursor.execute(
            f"CREATE TEMPORARY TABLE {name} (run_id bigint, key_id integer, step bigint, "
            "timestamp bigint, value double precision, is_nan boolean)"
        )
        if connection.vendor == "postgresql":
            _copy_file(cursor, name, _COLUMNS, spool.points)
        else:
            for rows in _spooled_rows(spool.points):
                batch = zip(
                    rows["run_id"].tolist(), rows["key_id"].tolist(), rows["step"].tolist(),
                    rows["timestamp"].tolist(), rows["value"].tolist(), rows["is_nan"].tolist(),
                    strict=True,
                )  # fmt: skip
                cursor.cursor.executemany(f"INSERT INTO {name} ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)", batch)
            # The summaries join the points to their keys' last steps; SQLite makes no index of
            # its own for that join, and without one a file of many keys takes minutes.
            cursor.execute(f"CREATE INDEX {name}_last_steps ON {name} (run_id, key_id, step)")
        rollups = f"{name}_rollups"
        cursor.execute(f"CREATE TEMPORARY TABLE {rollups} ({SCRATCH_COLUMNS})")
        inserted = _insert_new_points(cursor, name, rollups=rollups)
        merge_rollups_from_scratch(scratch=rollups)
        record_metric_keys_of(pairs_sql=f"SELECT DISTINCT run_id, key_id FROM {rollups}")
        cursor.execute(f"DROP TABLE {rollups}")
        cursor.execute(f"DROP TABLE {name}")
    timings["move_exact"] += time.perf_counter() - started
    return inserted


def _merge_partials(cursor: Any, spool: Spool, *, name: str) -> None:
    """The fast path's merges: the summaries folded while staging, then the rollup partials."""
    pairs = sorted(spool.summaries)
    columns: list[list[Any]] = [[] for _ in range(9)]
    for run_id, key_id in pairs:
        count, low, high, (step, timestamp, value, is_nan) = spool.summaries[(run_id, key_id)]
        row = (run_id, key_id, None if is_nan else value, is_nan, step, timestamp, low, high, count)
        for column, cell in zip(columns, row, strict=True):
            column.append(cell)
    kinds = ("bigint", "integer", "float8", "boolean", "bigint", "bigint", "float8", "float8", "bigint")
    unnest = "SELECT * FROM unnest(" + ", ".join(f"%s::{kind}[]" for kind in kinds) + ")"
    cursor.execute(summary_merge_sql(source=unnest), columns)
    partials, scratch = f"{name}_partials", f"{name}_rollups"
    cursor.execute(
        f"CREATE TEMPORARY TABLE {partials} ("
        + ", ".join(f"{column} {kind}" for column, _, kind in _PARTIAL_FIELDS)
        + ")"
    )
    _copy_file(cursor, partials, ", ".join(column for column, _, _ in _PARTIAL_FIELDS), spool.partials)
    cursor.execute(f"CREATE TEMPORARY TABLE {scratch} ({SCRATCH_COLUMNS})")
    cursor.execute(
        f"""INSERT INTO {scratch} SELECT run_id, key_id, bucket, count,
            CASE WHEN has_finite THEN min_value END, CASE WHEN has_finite THEN min_step END,
            CASE WHEN has_finite THEN min_timestamp END, CASE WHEN has_finite THEN max_value END,
            CASE WHEN has_finite THEN max_step END, CASE WHEN has_finite THEN max_timestamp END,
            CASE WHEN has_odd THEN odd_step END, CASE WHEN has_odd THEN odd_timestamp END,
            CASE WHEN has_odd THEN odd_value END, CASE WHEN has_odd THEN odd_is_nan END
            FROM {partials}"""
    )
    merge_rollups_from_scratch(scratch=scratch, partial=True)
    record_metric_keys_of(pairs_sql=f"SELECT DISTINCT run_id, key_id FROM {partials}")
    cursor.execute(f"DROP TABLE {partials}")
    cursor.execute(f"DROP TABLE {scratch}")


def _summary_source(points: str) -> str:
    """Per (run, key) of the table `points`: the newest point by (step, timestamp, value) as MLflow
    orders them, min and max (NaN excluded) and the count, in key order.

    The newest point is looked for only among the points at each key's last step: ranking them all
    would sort every row of the file. The aggregates ride along on those points rather than being
    joined to them afterwards: SQLite joins two derived tables by a nested loop, which took
    minutes for a file of 50,000 keys.
    """
    return f"""
        SELECT run_id, key_id, CASE WHEN is_nan THEN NULL ELSE value END, is_nan, step, timestamp,
               min_value, max_value, n
        FROM (
            SELECT p.run_id, p.key_id, p.step, p.timestamp, p.value, p.is_nan, a.min_value,
                   a.max_value, a.n, row_number() OVER (
                       PARTITION BY p.run_id, p.key_id ORDER BY p.timestamp DESC, p.value DESC, p.is_nan DESC
                   ) AS newest
            FROM {points} AS p
            JOIN (
                SELECT run_id, key_id, count(*) AS n, max(step) AS last_step,
                       min(CASE WHEN is_nan THEN NULL ELSE value END) AS min_value,
                       max(CASE WHEN is_nan THEN NULL ELSE value END) AS max_value
                FROM {points} GROUP BY run_id, key_id
            ) AS a ON p.run_id = a.run_id AND p.key_id = a.key_id AND p.step = a.last_step
        ) AS l
        WHERE newest = 1
        ORDER BY run_id, key_id
    """


def _insert_new_points(cursor: Any, name: str, *, rollups: str) -> int:
    """The exact path's point insert and summary merge; the new points' finest rollups go to `rollups`."""
    if connection.vendor == "postgresql":
        # One statement: the points really inserted (ON CONFLICT skips those already stored, and a
        # point repeated in the file) feed the summary merge directly.
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
