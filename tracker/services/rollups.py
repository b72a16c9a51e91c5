"""Chart rollups, kept on write beside the points: per step bucket at several widths, the lowest
and highest finite point, the first NaN/±Infinity point and the count.

Charts ask for about as many points as they are wide; a window of 1,000,000 steps drawn 1,200
pixels wide then reads about 2,000 rollup rows at width 512 rather than 1,000,000 points (see
tracker.selectors.charts). Widths grow by 8 from 64, so a window finds a level at most 8 times
finer than a pixel, and a 1,000-step batch touches about 26 rows over all ten levels.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection

from tracker.models import ROLLUP_WIDTHS, MetricPoint, MetricRollup

from .metric_store import PointRow

_FANOUT = 8  # each level's width is the previous one's times 8

# (count, min_value, min_step, min_ts, max_value, max_step, max_ts, odd_step, odd_ts, odd_value, odd_nan)
Aggregate = list[Any]
RollupRow = tuple[Any, ...]  # (key_id, level, bucket, *Aggregate)

_TABLE = MetricRollup._meta.db_table
_COLUMNS = (
    "run_id, key_id, level, bucket, count, min_value, min_step, min_timestamp, max_value, max_step, "
    "max_timestamp, odd_step, odd_timestamp, odd_value, odd_is_nan"
)
# Stored row `r`, batch row `excluded`; the SET expressions all read the stored row as it was.
_LOWER = "(r.min_value IS NULL OR excluded.min_value < r.min_value)"
_HIGHER = "(r.max_value IS NULL OR excluded.max_value > r.max_value)"
_EARLIER_ODD = "(r.odd_step IS NULL OR excluded.odd_step < r.odd_step)"
_UPSERT = f"""
INSERT INTO {_TABLE} AS r ({_COLUMNS}) VALUES {{values}}
ON CONFLICT (run_id, key_id, level, bucket) DO UPDATE SET
    count = r.count + excluded.count,
    min_value = CASE WHEN {_LOWER} THEN excluded.min_value ELSE r.min_value END,
    min_step = CASE WHEN {_LOWER} THEN excluded.min_step ELSE r.min_step END,
    min_timestamp = CASE WHEN {_LOWER} THEN excluded.min_timestamp ELSE r.min_timestamp END,
    max_value = CASE WHEN {_HIGHER} THEN excluded.max_value ELSE r.max_value END,
    max_step = CASE WHEN {_HIGHER} THEN excluded.max_step ELSE r.max_step END,
    max_timestamp = CASE WHEN {_HIGHER} THEN excluded.max_timestamp ELSE r.max_timestamp END,
    odd_step = CASE WHEN {_EARLIER_ODD} THEN excluded.odd_step ELSE r.odd_step END,
    odd_timestamp = CASE WHEN {_EARLIER_ODD} THEN excluded.odd_timestamp ELSE r.odd_timestamp END,
    odd_value = CASE WHEN {_EARLIER_ODD} THEN excluded.odd_value ELSE r.odd_value END,
    odd_is_nan = CASE WHEN {_EARLIER_ODD} THEN excluded.odd_is_nan ELSE r.odd_is_nan END
"""
_CHUNK = 1500  # rows per statement: 15 variables each, under SQLite's 32,766


def _merge(into: Aggregate, other: Aggregate) -> None:
    """Fold one bucket's aggregate into another's (the same rule as the upsert)."""
    into[0] += other[0]
    if other[1] is not None and (into[1] is None or other[1] < into[1]):
        into[1:4] = other[1:4]
    if other[4] is not None and (into[4] is None or other[4] > into[4]):
        into[4:7] = other[4:7]
    if other[7] is not None and (into[7] is None or other[7] < into[7]):
        into[7:11] = other[7:11]


def _point_aggregate(step: int, timestamp: int, value: float, is_nan: bool) -> Aggregate:
    if is_nan or not math.isfinite(value):
        return [1, None, None, None, None, None, None, step, timestamp, 0.0 if is_nan else value, is_nan]
    return [1, value, step, timestamp, value, step, timestamp, None, None, None, None]


def rollup_rows(rows: Iterable[PointRow]) -> list[RollupRow]:
    """Every level's aggregates of these points, in (key, level, bucket) order.

    The finest level is built from the points, each coarser one from the level below it
    (floor(step / 64 / 8**k) nests), so a batch costs one pass over its points.
    """
    finest: dict[tuple[int, int], Aggregate] = {}
    width = ROLLUP_WIDTHS[0]
    for key_id, step, timestamp, value, is_nan in rows:
        aggregate = _point_aggregate(step, timestamp, value, is_nan)
        found = finest.get((key_id, step // width))
        if found is None:
            finest[(key_id, step // width)] = aggregate
        else:
            _merge(found, aggregate)
    result: list[RollupRow] = []
    level_rows = finest
    for level in range(len(ROLLUP_WIDTHS)):
        result.extend(
            (key_id, level, bucket, *aggregate) for (key_id, bucket), aggregate in level_rows.items()
        )
        coarser: dict[tuple[int, int], Aggregate] = {}
        for (key_id, bucket), aggregate in level_rows.items():
            found = coarser.get((key_id, bucket // _FANOUT))
            if found is None:
                coarser[(key_id, bucket // _FANOUT)] = list(aggregate)
            else:
                _merge(found, aggregate)
        level_rows = coarser
    result.sort(key=lambda row: row[:3])  # key order, as summaries: concurrent batches never deadlock
    return result


# PostgreSQL reads the rows as one array per column: a hundred rows of literal VALUES took the
# server five times as long to parse and plan as the same rows through unnest.
_COLUMN_TYPES = (
    "bigint", "integer", "smallint", "bigint", "bigint", "float8", "bigint", "bigint", "float8", "bigint",
    "bigint", "bigint", "bigint", "float8", "boolean",
)  # fmt: skip
_UNNEST = "SELECT * FROM unnest(" + ", ".join(f"%s::{kind}[]" for kind in _COLUMN_TYPES) + ")"


def update_metric_rollups(*, run_id: int, rows: Sequence[PointRow]) -> None:
    """Fold newly inserted points into the run's rollups (call with each point once)."""
    rollups = rollup_rows(rows)
    if not rollups:
        return
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            columns = [list(column) for column in zip(*((run_id, *row) for row in rollups), strict=True)]
            cursor.execute(_UPSERT.replace("VALUES {values}", _UNNEST), columns)
            return
        for start in range(0, len(rollups), _CHUNK):
            chunk = rollups[start : start + _CHUNK]
            params: list[Any] = []
            for row in chunk:
                params.append(run_id)
                params.extend(row)
            placeholders = ",".join(["(%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)"] * len(chunk))
            cursor.execute(_UPSERT.format(values=placeholders), params)


def rebuild_metric_rollups(*, run_id: int | None = None, batch: int = 50_000) -> int:
    """Rollups from the stored points, for data logged before rollups existed (a migration runs
    it); reads each run's points in primary-key order, `batch` at a time. Returns points read."""
    runs = MetricPoint.objects.values_list("run_id", flat=True).distinct().order_by("run_id")
    run_ids = [run_id] if run_id is not None else list(runs)
    read = 0
    for current in run_ids:
        MetricRollup.objects.filter(run_id=current).delete()
        after: tuple[int, int, int, float, bool] | None = None
        while True:
            points = MetricPoint.objects.filter(run_id=current)
            if after is not None:
                points = points.filter(pk__gt=(current, *after))
            rows = list(
                points.order_by("key_id", "step", "timestamp", "value", "is_nan").values_list(
                    "key_id", "step", "timestamp", "value", "is_nan"
                )[:batch]
            )
            if not rows:
                break
            update_metric_rollups(run_id=current, rows=rows)
            read += len(rows)
            after = rows[-1]
    return read
