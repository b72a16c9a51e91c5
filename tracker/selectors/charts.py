"""Chart data for many runs and metric keys at once, reduced in the database before Python sees it.

A chart is about as wide as `max_points` pixels, so a window of a series is cut into that many
step buckets and the database returns, per bucket, the point with the lowest and the point with
the highest finite value (with their steps and timestamps), the first NaN/±Infinity point (a gap
in the line), and the window's first and last points. 1,000,000 stored points therefore reach
Python as at most about 2 max_points rows; MinMaxLTTB (tsdownsample) then thins what is left to
max_points, keeping the shape: a one-step spike is the extreme of its bucket, so it survives both
stages. Two queries serve a whole request, however many series it names (per chunk of series).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from operator import itemgetter

import numpy as np
from django.db import connection
from tsdownsample import MinMaxLTTBDownsampler

from config.exceptions import InvalidInput
from tracker.models import ROLLUP_WIDTHS, MetricKey, MetricPoint, MetricRollup, MetricSummary, Run

MIN_CHART_POINTS = 10
MAX_CHART_POINTS = 20_000
MAX_CHART_RUNS = 100
MAX_CHART_KEYS = 20
# Series per SQL statement: SQLite allows 500 terms in a compound SELECT, and the window query
# below has two per series.
_CHUNK = 200
_INT64 = (-(2**63), 2**63 - 1)
_TABLE = MetricPoint._meta.db_table
_ROLLUPS = MetricRollup._meta.db_table
_SUMMARIES = MetricSummary._meta.db_table
# A finite value: NaN is stored as 0 with is_nan, ±Infinity as itself (both databases hold it).
_FINITE = "NOT p.is_nan AND p.value BETWEEN -1.7976931348623157e308 AND 1.7976931348623157e308"


@dataclass(frozen=True)
class ChartSeries:
    """One run's points of one key, ready to draw; `downsampled` says points were left out."""

    run_id: str
    key: str
    steps: list[int]
    timestamps: list[int]  # milliseconds since the epoch, one per step
    values: list[float]  # NaN or ±Infinity where so logged: a gap in a drawn line
    total_points: int  # points stored in the window
    downsampled: bool


def empty_series(run: Run, key: str) -> ChartSeries:
    return ChartSeries(run.uuid, key, [], [], [], 0, False)


@dataclass
class _Window:
    """A series' window as stored: its first and last point, and the bucket width to read it with."""

    index: int
    run: Run
    key: str
    key_id: int
    first: tuple[int, int, float, bool] | None = None  # (step, timestamp, value, is_nan)
    last: tuple[int, int, float, bool] | None = None
    width: int = 1
    stale: tuple[int, int] | None = None  # steps whose rollups are not folded in yet
    raw: list[tuple[int, int]] = field(default_factory=list)  # step ranges read from the points
    rollups: list[tuple[int, int, int]] = field(default_factory=list)  # (level, first, last bucket)
    points: dict[tuple[int, int, float | str], float] = field(default_factory=dict)
    total: int = 0

    def add(self, step: int, timestamp: int, value: float) -> None:
        """Keep a candidate point once (NaN is never equal to itself, so it is keyed by name)."""
        self.points[(step, timestamp, "nan" if math.isnan(value) else value)] = value


def _chunks(items: Sequence[_Window]) -> Iterable[Sequence[_Window]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _clamp_step(value: float, *, up: bool) -> int:
    step = math.ceil(value) if up else math.floor(value)
    return min(max(step, _INT64[0]), _INT64[1])


def _read_window_ends(windows: Sequence[_Window], lo: int, hi: int) -> None:
    """The first and last point of each series inside [lo, hi] (two index probes per series), and
    on PostgreSQL the steps of each whose rollups are stale: one query."""
    parts: list[str] = []
    params: list[int] = []
    columns = "step, timestamp, value, is_nan"
    for window in windows:
        for end, order in ((0, "step, timestamp"), (1, "step DESC, timestamp DESC")):
            parts.append(
                f"SELECT * FROM (SELECT {window.index} AS i, {end} AS e, {columns} FROM {_TABLE} "
                f"WHERE run_id = %s AND key_id = %s AND step >= %s AND step <= %s "
                f"ORDER BY {order} LIMIT 1) AS w{window.index}_{end}"
            )
            params += [window.run.pk, window.key_id, lo, hi]
    if connection.vendor == "postgresql":  # where logged points leave rollups to the fold
        series = ", ".join(["(%s, %s::bigint, %s::int)"] * len(windows))
        parts.append(
            # Steps still stale and those a fold is recomputing right now, as one range.
            "SELECT w.i, 2, LEAST(s.rollups_stale_from, s.rollups_folding_from), "
            "GREATEST(s.rollups_stale_to, s.rollups_folding_to), 0.0::float8, false "
            f"FROM (VALUES {series}) AS w (i, run_id, key_id) JOIN {_SUMMARIES} AS s "
            "ON s.run_id = w.run_id AND s.key_id = w.key_id "
            "WHERE s.rollups_stale_from IS NOT NULL OR s.rollups_folding_from IS NOT NULL"
        )
        params += [value for window in windows for value in (window.index, window.run.pk, window.key_id)]
    by_index = {window.index: window for window in windows}
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts), params)
        for index, end, step, timestamp, value, is_nan in cursor.fetchall():
            if end == 2:
                by_index[index].stale = (step, timestamp)  # the stale range's first and last step
            elif end == 0:
                by_index[index].first = (step, timestamp, value, bool(is_nan))
            else:
                by_index[index].last = (step, timestamp, value, bool(is_nan))


def _plan(window: _Window) -> None:
    """Which parts of the window come from points and which from rollups.

    The coarsest rollup level no wider than a chart bucket serves the buckets it covers whole;
    the steps before its first and after its last whole bucket (less than one rollup bucket at
    each end), the buckets that stale steps fall in, and windows too narrow for any level are
    read from the points.
    """
    assert window.first is not None and window.last is not None
    lo, hi = window.first[0], window.last[0]
    levels = [level for level, width in enumerate(ROLLUP_WIDTHS) if width <= window.width]
    if not levels:
        window.raw = [(lo, hi)]
        return
    level = levels[-1]
    width = ROLLUP_WIDTHS[level]
    first_bucket, last_bucket = -(-lo // width), (hi + 1) // width - 1
    if first_bucket > last_bucket:
        window.raw = [(lo, hi)]
        return
    kept = [(first_bucket, last_bucket)]
    raw = [(lo, first_bucket * width - 1), ((last_bucket + 1) * width, hi)]
    if window.stale is not None:
        stale_first, stale_last = window.stale[0] // width, window.stale[1] // width
        if stale_first <= last_bucket and stale_last >= first_bucket:
            kept = [(first_bucket, stale_first - 1), (stale_last + 1, last_bucket)]
            raw.append(
                (max(stale_first, first_bucket) * width, (min(stale_last, last_bucket) + 1) * width - 1)
            )
    window.rollups = [(level, a, b) for a, b in kept if a <= b]
    window.raw = [(a, b) for a, b in raw if a <= b]


def _values(rows: Sequence[tuple[int, ...]]) -> tuple[str, list[int]]:
    params = [value for row in rows for value in row]
    return ", ".join(["(" + ", ".join(["%s"] * len(rows[0])) + ")"] * len(rows)), params


# Chart buckets are numbered from the series' first step (`base`). Each end is divided by the
# width rather than their difference: no int64 overflow between steps far apart (the bucket
# that straddles 0 may be wider).
def _bucket(step: str) -> str:
    return f"({step} / s.width - s.base / s.width)"


def _join(table: str, alias: str, condition: str) -> str:
    """Join each series row to its own index range. PostgreSQL gets a LATERAL subquery that
    `OFFSET 0` keeps from being flattened: as a plain join, its planner (a few VALUES rows against
    millions of points) chose a parallel scan of the whole table, 2 s instead of milliseconds.
    SQLite always loops over the index."""
    if connection.vendor == "postgresql":
        return (
            f"FROM s CROSS JOIN LATERAL (SELECT * FROM {table} {alias} WHERE {condition} OFFSET 0) AS {alias}"
        )
    return f"FROM s JOIN {table} {alias} ON {condition}"


def _raw_sql(windows: Sequence[_Window]) -> tuple[str, list[int]]:
    """Per series and chart bucket, from the points: the min and max finite point and the first
    non-finite one, with the count."""
    pieces = [
        (w.index, w.run.pk, w.key_id, lo, hi, w.first[0], w.width)
        for w in windows
        if w.first is not None
        for lo, hi in w.raw
    ]
    values, params = _values(pieces)
    series = f"s(i, run_id, key_id, lo, hi, base, width) AS (VALUES {values})"
    bucket = _bucket("p.step")
    join = _join(
        _TABLE, "p", "p.run_id = s.run_id AND p.key_id = s.key_id AND p.step >= s.lo AND p.step <= s.hi"
    )
    if connection.vendor == "postgresql":
        kind = _array_kind(windows)
        offset = f"(p.step %% s.width){kind}"
        aggregates = _pg_extremes(
            low=f"ARRAY[p.value{kind}, {offset}, p.timestamp{kind}]",
            high=f"ARRAY[p.value{kind}, {offset}, p.timestamp{kind}]",
            odd=f"ARRAY[{offset}, p.timestamp{kind}, p.value{kind}, p.is_nan::int{kind}]",
            finite=_FINITE,
            odd_filter=f"NOT ({_FINITE})",
        )
        return _pg_unpacked(
            f"WITH {series} SELECT s.i, {bucket} AS b, count(*) AS c, {aggregates} {join} GROUP BY s.i, b"
        ), params
    # SQLite: a bare column beside a single min() or max() comes from the row holding that
    # extreme, so three grouped selects (min, max, first non-finite) give the same rows.
    selects = [
        f"SELECT s.i, {bucket} AS b, count(*), min(p.value), p.step, p.timestamp, p.is_nan {join} "
        f"WHERE {_FINITE} GROUP BY s.i, b",
        f"SELECT s.i, {bucket} AS b, 0, max(p.value), p.step, p.timestamp, p.is_nan {join} "
        f"WHERE {_FINITE} GROUP BY s.i, b",
        f"SELECT s.i, {bucket} AS b, count(*), p.value, min(p.step), p.timestamp, p.is_nan {join} "
        f"WHERE NOT ({_FINITE}) GROUP BY s.i, b",
    ]
    return f"WITH {series} " + " UNION ALL ".join(selects), params


def _rollup_sql(windows: Sequence[_Window]) -> tuple[str, list[int]]:
    """The same reduction from the rollup rows a window's middle is covered by: each row's
    extreme counts in the chart bucket of its own step, so the result is that of the points."""
    pieces = [
        (w.index, w.run.pk, w.key_id, *rollup, w.first[0], w.width, ROLLUP_WIDTHS[rollup[0]])
        for w in windows
        if w.first is not None
        for rollup in w.rollups
    ]
    values, params = _values(pieces)
    series = f"s(i, run_id, key_id, level, b_lo, b_hi, base, width, rw) AS (VALUES {values})"
    join = _join(
        _ROLLUPS,
        "r",
        "r.run_id = s.run_id AND r.key_id = s.key_id AND r.level = s.level "
        "AND r.bucket >= s.b_lo AND r.bucket <= s.b_hi",
    )
    if connection.vendor == "postgresql":
        # A rollup row is never wider than a chart bucket: it joins the chart bucket where it
        # starts, whole (one row per chart bucket, not three), and its extremes keep their own
        # steps as offsets from that bucket's start (below 2 widths: exact in float8).
        kind = _array_kind(windows)
        start = "((r.bucket * s.rw) / s.width)"

        def offset(step: str) -> str:
            return f"({step} - {start} * s.width){kind}"

        aggregates = _pg_extremes(
            low=f"ARRAY[r.min_value{kind}, {offset('r.min_step')}, r.min_timestamp{kind}]",
            high=f"ARRAY[r.max_value{kind}, {offset('r.max_step')}, r.max_timestamp{kind}]",
            odd=(
                f"ARRAY[{offset('r.odd_step')}, r.odd_timestamp{kind}, r.odd_value{kind}, "
                f"r.odd_is_nan::int{kind}]"
            ),
            finite="r.min_value IS NOT NULL",
            odd_filter="r.odd_step IS NOT NULL",
        )
        return _pg_unpacked(
            f"WITH {series} SELECT s.i, {start} - s.base / s.width AS b, sum(r.count)::bigint AS c, "
            f"{aggregates} {join} GROUP BY s.i, b"
        ), params
    # SQLite, as for the points: each extreme in the chart bucket of its own step.
    counted = _bucket("COALESCE(r.min_step, r.odd_step)")  # every rollup row counted once
    selects = [
        f"SELECT s.i, {counted} AS b, sum(r.count), min(r.min_value), r.min_step, r.min_timestamp, 0 "
        f"{join} GROUP BY s.i, b",
        f"SELECT s.i, {_bucket('r.max_step')} AS b, 0, max(r.max_value), r.max_step, r.max_timestamp, 0 "
        f"{join} WHERE r.max_step IS NOT NULL GROUP BY s.i, b",
        f"SELECT s.i, {_bucket('r.odd_step')} AS b, 0, r.odd_value, min(r.odd_step), r.odd_timestamp, "
        f"r.odd_is_nan {join} WHERE r.odd_step IS NOT NULL GROUP BY s.i, b",
    ]
    return f"WITH {series} " + " UNION ALL ".join(selects), params


def _pg_extremes(*, low: str, high: str, odd: str, finite: str, odd_filter: str) -> str:
    """PostgreSQL in one pass: min/max over (value, offset, timestamp) arrays bring each
    extreme's step offset and time with it. The arrays are float8, so they carry the step's
    offset in its chart bucket rather than the step itself, which may not fit; buckets of 2**53
    steps and more (steps spread over most of int64) take slower numeric arrays."""
    return (
        f"min({low}) FILTER (WHERE {finite}) AS lo, max({high}) FILTER (WHERE {finite}) AS hi, "
        f"min({odd}) FILTER (WHERE {odd_filter}) AS odd"
    )


def _pg_unpacked(grouped: str) -> str:
    """The arrays' elements as plain columns: psycopg reads numbers far faster than arrays."""
    return (
        "SELECT i, b, c, lo[1], lo[2], lo[3], hi[1], hi[2], hi[3], odd[1], odd[2], odd[3], odd[4] "
        f"FROM ({grouped}) AS grouped"
    )


def _array_kind(windows: Sequence[_Window]) -> str:
    return "" if max(w.width for w in windows) < 2**53 else "::numeric"


def _truncated_div(a: int, b: int) -> int:
    """Integer division rounding toward zero, as SQL's `/` does (Python's `//` floors)."""
    return -(-a // b) if (a < 0) != (b < 0) else a // b


def _read_buckets(windows: Sequence[_Window], sql: str, params: list[int]) -> None:
    """Fill each window's candidate points from the database's per-bucket reduction."""
    by_index = {window.index: window for window in windows}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    if connection.vendor == "postgresql":
        for index, bucket, count, *extremes, odd_offset, odd_ts, odd_value, odd_nan in rows:
            window = by_index[index]
            window.total += count
            assert window.first is not None
            # step = (step / width) * width + offset, with SQL's truncating division.
            base = (bucket + _truncated_div(window.first[0], window.width)) * window.width
            for value, offset, timestamp in (extremes[:3], extremes[3:]):
                if value is not None:
                    window.add(base + int(offset), int(timestamp), float(value))
            if odd_offset is not None:
                window.add(base + int(odd_offset), int(odd_ts), math.nan if odd_nan else float(odd_value))
        return
    for index, _bucket_number, count, value, step, timestamp, is_nan in rows:
        window = by_index[index]
        window.total += count
        if step is not None and (value is not None or is_nan):
            window.add(step, timestamp, math.nan if is_nan else value)


Point = tuple[int, int, float]  # (step, timestamp, value)


def _thin(points: list[Point], max_points: int) -> list[Point]:
    """MinMaxLTTB's choice of the finite points, plus every gap marker and both ends."""
    points.sort(key=itemgetter(0, 1))
    finite = [i for i, p in enumerate(points) if math.isfinite(p[2])]
    if len(points) <= max_points or len(finite) < 3:
        return points
    keep = {0, len(points) - 1}
    keep.update(i for i, p in enumerate(points) if not math.isfinite(p[2]))
    budget = max(max_points - len(keep), 3)
    if len(finite) > budget:
        steps = np.array([points[i][0] for i in finite], dtype=np.float64)
        values = np.array([points[i][2] for i in finite], dtype=np.float64)
        # MinMaxLTTB wants an even budget of at least 4; its choice keeps extremes.
        n_out = max(4, budget - budget % 2)
        chosen = MinMaxLTTBDownsampler().downsample(steps, values, n_out=n_out)
        keep.update(finite[i] for i in chosen.tolist())
    else:
        keep.update(finite)
    return [points[i] for i in sorted(keep)]


def chart_series(
    *,
    runs: Sequence[Run],
    keys: Sequence[str],
    max_points: int = 1200,
    x_range: tuple[float, float] | None = None,
    after_step: int | None = None,
) -> list[ChartSeries]:
    """Every run and key series in a step window, reduced to about `max_points` points each.

    `x_range` reads only that window (a zoomed chart fetches finer data); `after_step` reads only
    points after it (a live chart's new points). Series with no points in the window come back
    empty, in run-then-key order. At most four queries for any number of series up to 200.
    """
    if not MIN_CHART_POINTS <= max_points <= MAX_CHART_POINTS:
        raise InvalidInput(f"must be between {MIN_CHART_POINTS} and {MAX_CHART_POINTS}", field="max_points")
    if len(runs) > MAX_CHART_RUNS:
        raise InvalidInput(f"at most {MAX_CHART_RUNS} runs at once, got {len(runs)}", field="runs")
    if len(keys) > MAX_CHART_KEYS:
        raise InvalidInput(f"at most {MAX_CHART_KEYS} metric keys at once, got {len(keys)}", field="keys")
    lo, hi = _INT64
    if x_range is not None:
        lo, hi = _clamp_step(x_range[0], up=False), _clamp_step(x_range[1], up=True)
    if after_step is not None:
        lo = max(lo, min(after_step, _INT64[1] - 1) + 1)
    key_ids = dict(MetricKey.objects.filter(name__in=keys).values_list("name", "id"))
    windows: list[_Window] = []
    empty: dict[tuple[str, str], ChartSeries] = {}
    for run in runs:
        for key in keys:
            if key in key_ids and lo <= hi:
                windows.append(_Window(index=len(windows), run=run, key=key, key_id=key_ids[key]))
            else:
                empty[(run.uuid, key)] = empty_series(run, key)
    for chunk in _chunks(windows):
        _read_window_ends(chunk, lo, hi)
        present = [w for w in chunk if w.first is not None and w.last is not None]
        for window in present:
            assert window.first is not None and window.last is not None
            span = window.last[0] - window.first[0] + 1
            # Each chart bucket yields its lowest and highest point: half as many buckets as
            # points fill the chart, and MinMaxLTTB has little left to thin.
            window.width = max(1, -(-span // max(1, max_points // 2)))
            _plan(window)
        if any(window.raw for window in present):
            _read_buckets(present, *_raw_sql(present))
        if any(window.rollups for window in present):
            _read_buckets(present, *_rollup_sql(present))
    result: dict[tuple[str, str], ChartSeries] = dict(empty)
    for window in windows:
        if window.first is None or window.last is None:
            result[(window.run.uuid, window.key)] = empty_series(window.run, window.key)
            continue
        for step, timestamp, value, is_nan in (window.first, window.last):
            window.add(step, timestamp, math.nan if is_nan else value)
        points = _thin([(step, ts, value) for (step, ts, _), value in window.points.items()], max_points)
        result[(window.run.uuid, window.key)] = ChartSeries(
            run_id=window.run.uuid,
            key=window.key,
            steps=[p[0] for p in points],
            timestamps=[p[1] for p in points],
            values=[p[2] for p in points],
            total_points=window.total,
            downsampled=len(points) < window.total,
        )
    return [result[(run.uuid, key)] for run in runs for key in keys]
