"""The chart reduction: many runs and keys per call, reduced in SQL, spikes and ends kept."""

from __future__ import annotations

import math

import pytest

from config.exceptions import InvalidInput
from tracker.selectors import chart_series
from tracker.services import metric_key_ids, update_metric_summaries
from tracker.services.metric_store import insert_points

pytestmark = pytest.mark.django_db


def store(run, key: str, values, *, steps=None, timestamps=None) -> None:
    """Points straight into the store (the services' own bulk path), without 1,000-point batches."""
    key_id = metric_key_ids([key])[key]
    steps = list(range(len(values))) if steps is None else steps
    timestamps = [1_700_000_000_000 + s for s in steps] if timestamps is None else timestamps
    rows = sorted(
        (key_id, s, t, 0.0 if math.isnan(v) else v, math.isnan(v))
        for s, t, v in zip(steps, timestamps, values, strict=True)
    )
    update_metric_summaries(run=run, rows=insert_points(run_id=run.pk, rows=rows))


@pytest.fixture
def second_run(experiment, contributor):
    from tests.factories import RunFactory

    return RunFactory(experiment=experiment, user=contributor, name="second")


def test_a_one_step_spike_in_a_long_series_survives_full_zoom_out(run):
    values = [math.sin(step / 300) for step in range(200_000)]
    values[123_457] = 50.0
    values[77_001] = -50.0
    store(run, "loss", values)
    (series,) = chart_series(runs=[run], keys=["loss"], max_points=500)
    assert series.downsampled is True
    assert series.total_points == 200_000
    assert len(series.steps) <= 500
    assert series.values[series.steps.index(123_457)] == 50.0
    assert series.values[series.steps.index(77_001)] == -50.0
    assert series.steps == sorted(series.steps)


def test_the_first_and_last_points_of_the_window_are_kept(run):
    values = [float(step % 17) for step in range(10_000)]
    store(run, "acc", values)
    (series,) = chart_series(runs=[run], keys=["acc"], max_points=50)
    assert (series.steps[0], series.values[0]) == (0, 0.0)
    assert (series.steps[-1], series.values[-1]) == (9_999, float(9_999 % 17))
    (window,) = chart_series(runs=[run], keys=["acc"], max_points=50, x_range=(1234.5, 8000.2))
    assert (window.steps[0], window.values[0]) == (1234, float(1234 % 17))
    assert (window.steps[-1], window.values[-1]) == (8001, float(8001 % 17))
    assert window.total_points == 8001 - 1234 + 1


def test_a_window_as_narrow_as_the_chart_comes_back_whole(run):
    store(run, "acc", [step / 10 for step in range(5_000)])
    (series,) = chart_series(runs=[run], keys=["acc"], max_points=300, x_range=(100, 199))
    assert series.downsampled is False
    assert series.steps == list(range(100, 200))
    assert series.values == [step / 10 for step in range(100, 200)]
    assert series.timestamps == [1_700_000_000_000 + step for step in range(100, 200)]


def test_a_window_past_the_last_step_is_empty(run):
    store(run, "acc", [1.0, 2.0])
    (series,) = chart_series(runs=[run], keys=["acc"], x_range=(5, 9))
    assert (series.steps, series.values, series.total_points, series.downsampled) == ([], [], 0, False)


def test_after_step_reads_only_the_points_a_live_chart_has_not_seen(run):
    store(run, "loss", [1.0, 0.9, 0.8, 0.7, 0.6])
    (series,) = chart_series(runs=[run], keys=["loss"], after_step=2)
    assert series.steps == [3, 4]
    assert series.values == [0.7, 0.6]


def test_nan_and_infinities_come_back_as_logged_and_are_never_extremes(run):
    values = [1.0, math.nan, 2.0, math.inf, 3.0, -math.inf, 4.0]
    store(run, "x", values)
    (series,) = chart_series(runs=[run], keys=["x"])
    assert series.steps == [0, 1, 2, 3, 4, 5, 6]
    assert [v for v in series.values if not math.isnan(v)] == [1.0, 2.0, math.inf, 3.0, -math.inf, 4.0]
    assert math.isnan(series.values[1])


def test_non_finite_points_in_a_long_series_are_gaps_not_extremes(run):
    values = [float(step % 100) for step in range(20_000)]
    values[5_000], values[12_000], values[15_000] = math.inf, -math.inf, math.nan
    store(run, "x", values)
    (series,) = chart_series(runs=[run], keys=["x"], max_points=100)
    finite = [v for v in series.values if math.isfinite(v)]
    assert (min(finite), max(finite)) == (0.0, 99.0)
    points = dict(zip(series.steps, series.values, strict=True))
    assert points[5_000] == math.inf and points[12_000] == -math.inf and math.isnan(points[15_000])


def test_a_long_run_of_nan_stays_a_gap_without_sending_every_nan(run):
    values = [math.nan if 1_000 <= step < 9_000 else float(step) for step in range(10_000)]
    store(run, "x", values)
    (series,) = chart_series(runs=[run], keys=["x"], max_points=100)
    assert len(series.steps) <= 100
    inside = [v for s, v in zip(series.steps, series.values, strict=True) if 1_000 <= s < 9_000]
    assert inside and all(math.isnan(v) for v in inside)
    assert max(v for v in series.values if math.isfinite(v)) == 9_999.0
    assert (series.steps[0], series.steps[-1]) == (0, 9_999)


def test_several_runs_and_keys_come_back_in_run_then_key_order_from_a_fixed_number_of_queries(
    run, second_run, django_assert_max_num_queries
):
    store(run, "loss", [3.0, 2.0, 1.0])
    store(run, "acc", [0.1, 0.2])
    store(second_run, "loss", [5.0, 4.0])
    with django_assert_max_num_queries(4):
        result = chart_series(runs=[run, second_run], keys=["loss", "acc", "missing"])
    assert [(s.run_id, s.key, s.values) for s in result] == [
        (run.uuid, "loss", [3.0, 2.0, 1.0]),
        (run.uuid, "acc", [0.1, 0.2]),
        (run.uuid, "missing", []),
        (second_run.uuid, "loss", [5.0, 4.0]),
        (second_run.uuid, "acc", []),
        (second_run.uuid, "missing", []),
    ]


def test_points_sharing_a_step_are_all_counted(run):
    store(run, "loss", [1.0, 5.0, 3.0], steps=[0, 0, 0], timestamps=[1, 2, 3])
    (series,) = chart_series(runs=[run], keys=["loss"])
    assert series.total_points == 3
    assert series.steps == [0, 0, 0]
    assert sorted(v for v in series.values if v is not None) == [1.0, 3.0, 5.0]


def test_steps_at_both_ends_of_int64_do_not_overflow(run):
    store(run, "x", [1.0, 2.0, 3.0], steps=[-(2**63), 0, 2**63 - 1], timestamps=[1, 2, 3])
    (series,) = chart_series(runs=[run], keys=["x"], max_points=10, x_range=(-1e30, 1e30))
    assert series.values == [1.0, 2.0, 3.0]


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        ({"max_points": 5}, "max_points", "must be between 10 and 20000"),
        ({"keys": [f"k{i}" for i in range(21)]}, "keys", "at most 20 metric keys at once, got 21"),
    ],
)
def test_limits_are_errors_naming_the_field(run, kwargs, field, message):
    with pytest.raises(InvalidInput) as error:
        chart_series(**{"runs": [run], "keys": ["loss"], **kwargs})
    assert (error.value.field, error.value.message) == (field, message)
