"""Chart rollups: every level agrees with the points, across batches, folds and rebuilds (on
PostgreSQL logged points leave theirs to the fold, which `rollups` runs first; SQLite merges
them on write)."""

from __future__ import annotations

import math

import pytest

from tracker.models import ROLLUP_WIDTHS, MetricPoint, MetricRollup
from tracker.selectors import chart_series
from tracker.services import MetricInput, log_batch
from tracker.services.rollups import fold_all_stale_rollups, rebuild_metric_rollups, rollup_rows

pytestmark = pytest.mark.django_db


def rollups(run, key: str = "loss") -> dict[tuple[int, int], tuple]:
    fold_all_stale_rollups()
    rows = MetricRollup.objects.filter(run=run, key__name=key).values_list(
        "level", "bucket", "count", "min_value", "min_step", "max_value", "max_step", "odd_step", "odd_is_nan"
    )
    return {(level, bucket): tuple(rest) for level, bucket, *rest in rows}


def worked_out_in_python(run, key: str = "loss") -> dict[tuple[int, int], tuple]:
    """`rollups` as `rollup_rows` works them out from the run's points (SQLite's path)."""
    points = MetricPoint.objects.filter(run=run, key__name=key)
    rows = rollup_rows(sorted(points.values_list("key_id", "step", "timestamp", "value", "is_nan")))
    return {
        (level, bucket): (count, low, low_step, high, high_step, odd_step, odd_nan)
        for _, level, bucket, count, low, low_step, _, high, high_step, _, odd_step, _, _, odd_nan in rows
    }


def test_each_level_holds_the_min_max_and_count_of_its_bucket(contributor, run):
    values = [float((step * 37) % 101) for step in range(1000)]
    values[700] = math.nan
    log_batch(
        actor=contributor,
        run=run,
        metrics=[MetricInput("loss", v, step, step) for step, v in enumerate(values)],
    )
    stored = rollups(run)
    for level, width in enumerate(ROLLUP_WIDTHS[:3]):
        for bucket in range(0, 1000 // width + 1):
            inside = [(v, s) for s, v in enumerate(values) if s // width == bucket]
            if not inside:
                continue
            finite = [(v, s) for v, s in inside if not math.isnan(v)]
            count, low, low_step, high, high_step, odd_step, odd_nan = stored[(level, bucket)]
            assert count == len(inside)
            assert (low, high) == (min(finite)[0], max(finite)[0])
            assert values[low_step] == low and values[high_step] == high
            has_nan = any(math.isnan(v) for v, _ in inside)
            assert (odd_step, odd_nan) == ((700, True) if has_nan else (None, None))
    assert {level for level, _ in stored} == set(range(len(ROLLUP_WIDTHS)))


def test_a_later_batch_merges_into_the_same_buckets(contributor, run):
    log_batch(actor=contributor, run=run, metrics=[MetricInput("x", 5.0, step, 1) for step in range(0, 32)])
    log_batch(
        actor=contributor, run=run, metrics=[MetricInput("x", -1.0, 40, 1), MetricInput("x", 9.0, 50, 1)]
    )
    count, low, low_step, high, high_step, *_ = rollups(run, "x")[(0, 0)]
    assert (count, low, low_step, high, high_step) == (34, -1.0, 40, 9.0, 50)


def test_rebuilding_from_the_points_gives_what_writes_kept(contributor, run):
    for start in range(0, 3000, 500):
        points = [MetricInput("loss", math.sin(s / 9), s, s) for s in range(start, start + 500)]
        points += [MetricInput("acc", s / 3000, s, s) for s in range(start, start + 500, 7)]
        log_batch(actor=contributor, run=run, metrics=points)
    kept = rollups(run), rollups(run, "acc")
    acc_points = sum(len(range(start, start + 500, 7)) for start in range(0, 3000, 500))
    assert rebuild_metric_rollups(run_id=run.pk) == 3000 + acc_points
    assert (rollups(run), rollups(run, "acc")) == kept


def test_a_chart_read_through_rollups_keeps_ends_extremes_and_true_points(contributor, run):
    values = [math.sin(step / 500) + (step % 13) / 50 for step in range(60_000)]
    values[41_234] = 40.0
    for start in range(0, len(values), 1000):
        log_batch(
            actor=contributor,
            run=run,
            metrics=[MetricInput("loss", values[s], s, s) for s in range(start, start + 1000)],
        )
    (series,) = chart_series(runs=[run], keys=["loss"], max_points=300, x_range=(1_000.5, 58_999.5))
    assert series.total_points == 58_001
    assert series.downsampled and len(series.steps) <= 300
    assert (series.steps[0], series.steps[-1]) == (1_000, 59_000)
    assert (series.values[0], series.values[-1]) == (values[1_000], values[59_000])
    window = values[1_000:59_001]
    assert max(series.values) == max(window) == 40.0  # the spike
    assert min(series.values) == pytest.approx(min(window), abs=1e-4)  # LTTB picks among near-equal troughs
    # Every drawn point is a stored one, at its own step and time.
    assert all(values[step] == value for step, value in zip(series.steps, series.values, strict=True))
    assert series.timestamps == series.steps


def test_folding_points_in_sql_keeps_the_same_rollups_as_writes_do(contributor, experiment, run):
    """Bulk uploads fold their points into rollups in SQL; every level must match those of logged points,
    across negative and int64-extreme steps, NaN and ±Infinity, and on top of rollups kept before."""
    from tests.factories import RunFactory
    from tracker.services.rollups import fold_points_into_rollups

    steps = [-(2**63), -(2**63) + 1, -4097, -513, -65, -64, -63, -1, 0, 1, 63, 64, 511, 512, 4096]
    steps += [*range(100, 5000, 37), 2**40, 2**63 - 2, 2**63 - 1]
    values = [math.cos(index * 1.7) * (index + 1) for index in range(len(steps))]
    values[3], values[9], values[20] = math.nan, math.inf, -math.inf
    first = [MetricInput("loss", values[i], steps[i], 1_000 + i) for i in range(0, len(steps), 2)]
    second = [MetricInput("loss", values[i], steps[i], 1_000 + i) for i in range(1, len(steps), 2)]

    by_sql = RunFactory(experiment=experiment, user=contributor, name="folded in SQL")
    source = RunFactory(experiment=experiment, user=contributor, name="holds the second half")
    log_batch(actor=contributor, run=run, metrics=first + second)
    log_batch(actor=contributor, run=by_sql, metrics=first)
    log_batch(actor=contributor, run=source, metrics=second)
    assert rollups(run) == worked_out_in_python(run)
    # The second half's points are read from another run's rows, as an upload reads its staging
    # table, and folded in SQL on top of the rollups the first batch made (folded by `rollups`).
    columns = "key_id, step, timestamp, value, is_nan"
    fold_points_into_rollups(
        points_sql=f"SELECT %s AS run_id, {columns} FROM {MetricPoint._meta.db_table} WHERE run_id = %s",
        params=[by_sql.pk, source.pk],
    )

    assert rollups(by_sql) == rollups(run)
    assert len(rollups(run)) > 3 * len(ROLLUP_WIDTHS)
