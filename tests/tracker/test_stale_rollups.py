"""Single points leave their rollups stale; charts read those steps from the points until the fold
recomputes the buckets, which then hold what batches would have kept."""

from __future__ import annotations

import math

import pytest

from tests.factories import RunFactory
from tracker.models import MetricRollup, MetricSummary
from tracker.selectors import chart_series
from tracker.services import MetricInput, log_batch
from tracker.services.rollups import fold_all_stale_rollups, fold_stale_rollups

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


@pytest.fixture
def twins(experiment, contributor):
    """The same points twice: `single` gets its last 300 steps and a late spike one point at a
    time, `batched` all of them in batches."""
    single = RunFactory(experiment=experiment, user=contributor, name="single points")
    batched = RunFactory(experiment=experiment, user=contributor, name="batches")
    early = [MetricInput("loss", value(step), step, step) for step in range(6000)]
    late = [MetricInput("loss", value(step), step, step) for step in range(6000, 6300)]
    odd = [MetricInput("loss", 40.0, 3001, 99), MetricInput("loss", math.nan, 4100, 99)]  # logged late
    for start in range(0, 6000, 1000):
        for run in (single, batched):
            log_batch(actor=contributor, run=run, metrics=early[start : start + 1000])
    for point in [*late, *odd]:
        log_batch(actor=contributor, run=single, metrics=[point])
    log_batch(actor=contributor, run=batched, metrics=[*late, *odd])
    return single, batched


def test_single_points_widen_the_stale_range_instead_of_writing_rollups(twins):
    single, batched = twins
    summary = MetricSummary.objects.get(run=single)
    assert (summary.rollups_stale_from, summary.rollups_stale_to) == (3001, 6299)
    assert MetricSummary.objects.get(run=batched).rollups_stale_from is None
    assert rollups(single) != rollups(batched)  # the late points are not in them yet


def test_charts_read_stale_steps_from_the_points(twins):
    """Read from rollups, a bucket counts where it starts, so the drawn points of a stale read may
    differ from those of a folded one; what they show may not: every point, ends, extremes, gaps."""
    single, batched = twins
    for window in ({}, {"x_range": (2000.5, 5000.5)}, {"after_step": 3000}):
        (stale,) = chart_series(runs=[single], keys=["loss"], max_points=100, **window)
        (folded,) = chart_series(runs=[batched], keys=["loss"], max_points=100, **window)
        assert stale.total_points == folded.total_points  # the stale points are counted
        assert (stale.steps[0], stale.steps[-1]) == (folded.steps[0], folded.steps[-1])
        finite = [v for v in stale.values if math.isfinite(v)]
        assert max(finite) == max(v for v in folded.values if math.isfinite(v)) == 40.0  # the late spike
        assert min(finite) == min(v for v in folded.values if math.isfinite(v))
        assert any(math.isnan(v) for v in stale.values)  # the late gap
        for step, timestamp, drawn_value in zip(stale.steps, stale.timestamps, stale.values, strict=True):
            if timestamp == 99:
                assert (step, repr(drawn_value)) in ((3001, "40.0"), (4100, "nan"))
            else:
                assert (timestamp, drawn_value) == (step, value(step))


def test_the_fold_recomputes_exactly_what_batches_kept(twins):
    single, batched = twins
    assert fold_stale_rollups() == 1
    assert rollups(single) == rollups(batched)
    assert MetricSummary.objects.get(run=single).rollups_stale_from is None
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
    assert fold_task.apply().get() == 1
    assert rollups(single) == rollups(batched)
