"""On PostgreSQL logged points leave their rollups stale, whether one at a time or in batches;
charts read those steps from the points until the fold recomputes the buckets, which then hold
what the points make (what SQLite's writers merge on write, worked out by `rollup_rows`)."""

from __future__ import annotations

import math

import pytest

from tests.factories import RunFactory
from tracker.models import MetricPoint, MetricRollup, MetricSummary
from tracker.selectors import chart_series
from tracker.services import MetricInput, log_batch
from tracker.services.rollups import fold_all_stale_rollups, fold_stale_rollups, rollup_rows

pytestmark = pytest.mark.usefixtures("postgres_statements")


def rollups(run) -> list[tuple]:
    return list(
        MetricRollup.objects.filter(run=run)
        .order_by("level", "bucket")
        .values_list("level", "bucket", "count", "min_value", "min_step", "max_value", "max_step", "odd_step")
    )


def drawn(run) -> tuple:
    (series,) = chart_series(runs=[run], keys=["loss"], max_points=100)
    return series.steps, series.timestamps, [repr(v) for v in series.values], series.total_points


def value(step: int) -> float:
    return math.sin(step / 40) + (step % 11) / 20


def worked_out_from_the_points(run) -> list[tuple]:
    """`rollups(run)` as rollup_rows makes them from every stored point."""
    points = MetricPoint.objects.filter(run=run).values_list("key_id", "step", "timestamp", "value", "is_nan")
    rows = rollup_rows(sorted(points))
    return sorted(
        (level, bucket, count, low, low_step, high, high_step, odd_step)
        for _, level, bucket, count, low, low_step, _, high, high_step, _, odd_step, *_ in rows
    )


@pytest.fixture
def twins(experiment, contributor):
    """The same points twice, their first 6,000 steps logged in batches and folded; then
    `single` gets its last 300 steps and a late spike and gap one point at a time, `batched`
    the same in one batch."""
    single = RunFactory(experiment=experiment, user=contributor, name="single points")
    batched = RunFactory(experiment=experiment, user=contributor, name="batches")
    early = [MetricInput("loss", value(step), step, step) for step in range(6000)]
    late = [MetricInput("loss", value(step), step, step) for step in range(6000, 6300)]
    odd = [MetricInput("loss", 40.0, 3001, 99), MetricInput("loss", math.nan, 4100, 99)]  # logged late
    for start in range(0, 6000, 1000):
        for run in (single, batched):
            log_batch(actor=contributor, run=run, metrics=early[start : start + 1000])
    assert fold_all_stale_rollups() == 2
    for point in [*late, *odd]:
        log_batch(actor=contributor, run=single, metrics=[point])
    log_batch(actor=contributor, run=batched, metrics=[*late, *odd])
    return single, batched


def test_logged_points_widen_the_stale_range_instead_of_writing_rollups(twins):
    single, batched = twins
    for run in twins:
        summary = MetricSummary.objects.get(run=run)
        assert (summary.rollups_stale_from, summary.rollups_stale_to) == (3001, 6299)
    assert rollups(single) == rollups(batched)  # neither wrote the late points' rollups
    assert rollups(single) != worked_out_from_the_points(single)


def test_charts_read_stale_steps_from_the_points(twins):
    """Read from rollups, a bucket counts where it starts, so the drawn points of a stale read may
    differ from those of a folded one; what they show may not: every point, ends, extremes, gaps."""
    windows = ({}, {"x_range": (2000.5, 5000.5)}, {"after_step": 3000})
    stale = [
        chart_series(runs=[run], keys=["loss"], max_points=100, **window)[0]
        for run in twins
        for window in windows
    ]
    fold_all_stale_rollups()
    folded = [
        chart_series(runs=[run], keys=["loss"], max_points=100, **window)[0]
        for run in twins
        for window in windows
    ]
    for before, after in zip(stale, folded, strict=True):
        assert before.total_points == after.total_points  # the stale points are counted
        assert (before.steps[0], before.steps[-1]) == (after.steps[0], after.steps[-1])
        finite = [v for v in before.values if math.isfinite(v)]
        assert max(finite) == max(v for v in after.values if math.isfinite(v)) == 40.0  # the late spike
        assert min(finite) == min(v for v in after.values if math.isfinite(v))
        assert any(math.isnan(v) for v in before.values)  # the late gap
        for step, timestamp, drawn_value in zip(before.steps, before.timestamps, before.values, strict=True):
            if timestamp == 99:
                assert (step, repr(drawn_value)) in ((3001, "40.0"), (4100, "nan"))
            else:
                assert (timestamp, drawn_value) == (step, value(step))


def test_the_fold_recomputes_exactly_what_the_points_make(twins):
    single, batched = twins
    assert fold_stale_rollups() == 2
    for run in twins:
        assert rollups(run) == worked_out_from_the_points(run)
        assert MetricSummary.objects.get(run=run).rollups_stale_from is None
    assert drawn(single) == drawn(batched)
    assert fold_stale_rollups() == 0  # nothing left


def test_the_fold_takes_series_in_rounds(experiment, contributor):
    runs = [RunFactory(experiment=experiment, user=contributor, name=f"r{i}") for i in range(3)]
    for run in runs:
        for key in ("loss", "acc"):
            log_batch(actor=contributor, run=run, metrics=[MetricInput(key, 1.0, 5, 1)])
    assert fold_stale_rollups(limit=4) == 4
    assert MetricSummary.objects.filter(rollups_stale_from__isnull=False).count() == 2
    assert fold_all_stale_rollups() == 2
    assert MetricRollup.objects.filter(run__in=runs, level=0).count() == 6


def test_beat_schedules_the_fold_and_its_task_folds(twins, settings):
    from tracker.tasks import fold_stale_rollups as fold_task

    single, batched = twins
    assert settings.CELERY_BEAT_SCHEDULE["tracker-fold-stale-rollups"] == {
        "task": fold_task.name,
        "schedule": settings.ROLLUP_FOLD_SECONDS,
    }
    assert fold_task.apply().get() == 2
    assert rollups(single) == rollups(batched) == worked_out_from_the_points(single)
