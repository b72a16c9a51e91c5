"""Reads of metric points: a series' keyset-paged history, chart series thinned on the server,
and samples for comparing runs."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from django.db.models import Q
from tsdownsample import MinMaxLTTBDownsampler

from config.exceptions import InvalidInput, NotFound
from tracker import search
from tracker.models import MetricKey, MetricPoint, Run

from .charts import MAX_CHART_POINTS, MIN_CHART_POINTS, chart_series
from .experiments import MAX_RESULTS_LIMIT

DEFAULT_MAX_POINTS = 1200


def _history_after(page_token: str) -> Q:
    """Points after the cursor in (step, timestamp, value, is_nan) order, the primary key's order."""
    cursor = search.decode_cursor(page_token)
    if len(cursor) != 4 or type(cursor[3]) is not bool:
        raise search.invalid_token()
    step, timestamp, value, is_nan = search.cursor_int(cursor[0]), search.cursor_int(cursor[1]), *cursor[2:]
    value = float(search.cursor_number(value))
    return (
        Q(step__gt=step)
        | Q(step=step, timestamp__gt=timestamp)
        | Q(step=step, timestamp=timestamp, value__gt=value)
        | Q(step=step, timestamp=timestamp, value=value, is_nan__gt=is_nan)
    )


@dataclass(frozen=True)
class MetricHistory:
    key: str
    points: list[tuple[int, int, float]]  # (step, timestamp, value); value may be NaN or ±inf
    next_page_token: str | None


def metric_history(
    *, run: Run, key: str, max_results: int = 25_000, page_token: str | None = None
) -> MetricHistory:
    """Every point of one series in (step, timestamp) order, paged by keyset."""
    if not 1 <= max_results <= MAX_RESULTS_LIMIT:
        raise InvalidInput(f"must be between 1 and {MAX_RESULTS_LIMIT}", field="max_results")
    key_id = MetricKey.objects.filter(name=key).values_list("id", flat=True).first()
    if key_id is None:
        return MetricHistory(key=key, points=[], next_page_token=None)
    points = MetricPoint.objects.filter(run=run, key_id=key_id)
    if page_token:
        points = points.filter(_history_after(page_token))
    rows = list(
        points.order_by("step", "timestamp", "value", "is_nan").values_list(
            "step", "timestamp", "value", "is_nan"
        )[: max_results + 1]
    )
    next_token = None
    if len(rows) > max_results:
        rows = rows[:max_results]
        next_token = search.encode_cursor(list(rows[-1]))
    return MetricHistory(
        key=key,
        points=[(step, ts, math.nan if nan else value) for step, ts, value, nan in rows],
        next_page_token=next_token,
    )


def metric_histories(*, runs: Sequence[Run], key: str, max_results: int) -> list[tuple[str, int, int, float]]:
    """One series of several runs as (run id, step, timestamp, value), ordered by run id and then
    step, at most `max_results` points in all, in two queries however many runs (MLflow's bulk
    history, which its web UI reads)."""
    key_id = MetricKey.objects.filter(name=key).values_list("id", flat=True).first()
    if key_id is None or not runs:
        return []
    rows = (
        MetricPoint.objects.filter(run__in=runs, key_id=key_id)
        .order_by("run__uuid", "step", "timestamp", "value", "is_nan")
        .values_list("run__uuid", "step", "timestamp", "value", "is_nan")[:max_results]
    )
    return [(run_id, step, ts, math.nan if nan else value) for run_id, step, ts, value, nan in rows]


def _thinned_index(steps: np.ndarray, values: np.ndarray, max_points: int) -> np.ndarray:
    """Which points to keep: MinMaxLTTB's choice among the finite values, plus every NaN/inf."""
    finite = np.isfinite(values)
    # The downsampler needs finite values; NaN/inf points are rare and kept as they are.
    keep = set(np.flatnonzero(~finite).tolist())
    finite_index = np.flatnonzero(finite)
    if len(finite_index) > max_points:
        chosen = MinMaxLTTBDownsampler().downsample(
            steps[finite_index], values[finite_index], n_out=max_points
        )
        keep.update(finite_index[chosen].tolist())
    else:
        keep.update(finite_index.tolist())
    return np.array(sorted(keep), dtype=np.int64)


@dataclass(frozen=True)
class Series:
    """One run's series as chart-ready arrays; `downsampled` says points were dropped."""

    run_id: str
    key: str
    steps: list[int]
    values: list[float | None]  # None for NaN, so charts show a gap
    total_points: int
    downsampled: bool


def metric_series(
    *,
    run: Run,
    key: str,
    max_points: int = DEFAULT_MAX_POINTS,
    x_range: tuple[float, float] | None = None,
) -> Series:
    """One series reduced like every chart's (see `charts.chart_series`); an unknown key is a 404."""
    max_points = max(MIN_CHART_POINTS, min(int(max_points), MAX_CHART_POINTS))
    if not MetricKey.objects.filter(name=key).exists():
        raise NotFound(f"run {run.uuid} has no metric {key!r}", field="key")
    (series,) = chart_series(runs=[run], keys=[key], max_points=max_points, x_range=x_range)
    values = [None if math.isnan(v) else v for v in series.values]  # a gap; ±Infinity stays itself
    return Series(run.uuid, key, series.steps, values, series.total_points, series.downsampled)


MAX_SAMPLED_RUNS = 100
MAX_SAMPLES_PER_RUN = 2500


def metric_samples(
    *,
    runs: Sequence[Run],
    key: str,
    max_points: int = MAX_SAMPLES_PER_RUN,
    step_range: tuple[int | None, int | None] = (None, None),
) -> list[tuple[str, int, int, float]]:
    """One metric of several runs, each thinned like the charts' series, for comparing runs.

    Rows are (run uuid, step, timestamp, value), by run uuid then step; a run's first and last
    point in the window are always kept. Each run is read on its own, so memory stays bounded
    by the longest series rather than the sum of them.
    """
    if len(runs) > MAX_SAMPLED_RUNS:
        raise InvalidInput(f"at most {MAX_SAMPLED_RUNS} runs at once, got {len(runs)}", field="run_ids")
    if not 1 <= max_points <= MAX_SAMPLES_PER_RUN:
        raise InvalidInput(f"must be between 1 and {MAX_SAMPLES_PER_RUN}", field="max_results")
    first_step, last_step = step_range
    if first_step is not None and last_step is not None and first_step > last_step:
        raise InvalidInput("must not be greater than end_step", field="start_step")
    key_id = MetricKey.objects.filter(name=key).values_list("id", flat=True).first()
    if key_id is None:
        return []
    samples: list[tuple[str, int, int, float]] = []
    for run in sorted(runs, key=lambda r: r.uuid):
        points = MetricPoint.objects.filter(run=run, key_id=key_id)
        if first_step is not None:
            points = points.filter(step__gte=first_step)
        if last_step is not None:
            points = points.filter(step__lte=last_step)
        rows = list(points.order_by("step", "timestamp").values_list("step", "timestamp", "value", "is_nan"))
        total = len(rows)
        if total > max_points:
            if max_points < 3:  # the downsampler needs three points; keep the ends, the last one first
                chosen = sorted({0, total - 1})[-max_points:]
            else:
                steps = np.fromiter((r[0] for r in rows), dtype=np.int64, count=total)
                values = np.fromiter(
                    (math.nan if r[3] else r[2] for r in rows), dtype=np.float64, count=total
                )
                chosen = _thinned_index(steps, values, max_points).tolist()
            rows = [rows[i] for i in chosen]
        uuid = run.uuid
        samples.extend((uuid, step, ts, math.nan if nan else value) for step, ts, value, nan in rows)
    return samples
