"""metrics/get-history and metrics/get-history-bulk-interval: exact points, NaN and infinity
spelled as protobuf JSON, pages that cover everything once, sampling per run."""

from __future__ import annotations

import pytest

from tracker.models import Experiment
from tracker.services import MetricInput, log_batch, start_run

pytestmark = pytest.mark.django_db

T0 = 1_700_000_000_000


@pytest.fixture
def curve_run(contributor, experiment):
    """A 'loss' series of 10 points, with a NaN at step 3 and +inf at step 5, and a second key."""
    run = start_run(actor=contributor, experiment=experiment, name="curve")
    values = [1.0, 0.8, 0.6, float("nan"), 0.5, float("inf"), 0.4, 0.3, 0.2, 0.1]
    points = [MetricInput("loss", value, step, T0 + step) for step, value in enumerate(values)]
    log_batch(actor=contributor, run=run, metrics=[*points, MetricInput("acc", 0.9, 0, T0)])
    return run


def history(wire, run_id: str, **message) -> dict:
    return wire.ok("GET", "metrics/get-history", {"run_id": run_id, "run_uuid": run_id, **message})


def test_history_returns_every_point_in_step_order_with_protobuf_spellings(wire, curve_run):
    shown = history(wire, curve_run.uuid, metric_key="loss", max_results=25000)
    assert shown == {
        "metrics": [
            {"key": "loss", "value": 1.0, "timestamp": T0, "step": 0},
            {"key": "loss", "value": 0.8, "timestamp": T0 + 1, "step": 1},
            {"key": "loss", "value": 0.6, "timestamp": T0 + 2, "step": 2},
            {"key": "loss", "value": "NaN", "timestamp": T0 + 3, "step": 3},
            {"key": "loss", "value": 0.5, "timestamp": T0 + 4, "step": 4},
            {"key": "loss", "value": "Infinity", "timestamp": T0 + 5, "step": 5},
            {"key": "loss", "value": 0.4, "timestamp": T0 + 6, "step": 6},
            {"key": "loss", "value": 0.3, "timestamp": T0 + 7, "step": 7},
            {"key": "loss", "value": 0.2, "timestamp": T0 + 8, "step": 8},
            {"key": "loss", "value": 0.1, "timestamp": T0 + 9, "step": 9},
        ]
    }


def test_history_pages_cover_every_point_once(wire, curve_run):
    seen, token, pages = [], None, 0
    while True:
        page = history(
            wire, curve_run.uuid, metric_key="loss", max_results=4, **({"page_token": token} if token else {})
        )
        pages += 1
        assert len(page["metrics"]) <= 4
        seen.extend(point["step"] for point in page["metrics"])
        token = page.get("next_page_token")
        if not token:
            break
    assert (seen, pages) == (list(range(10)), 3)


def test_history_of_a_key_never_logged_is_empty(wire, curve_run):
    assert history(wire, curve_run.uuid, metric_key="never") == {"metrics": []}


def test_history_accepts_the_legacy_run_uuid_alone(wire, curve_run):
    shown = wire.ok("GET", "metrics/get-history", {"run_uuid": curve_run.uuid, "metric_key": "acc"})
    assert shown == {"metrics": [{"key": "acc", "value": 0.9, "timestamp": T0, "step": 0}]}


def test_a_viewer_may_read_history(viewer_wire, curve_run):
    assert len(history(viewer_wire, curve_run.uuid, metric_key="loss")["metrics"]) == 10


@pytest.mark.parametrize(
    ("message", "status", "code", "field"),
    [
        (
            {"run_id": "0" * 32, "metric_key": "loss"},
            404,
            "RESOURCE_DOES_NOT_EXIST",
            f"Run '{'0' * 32}' not found",
        ),
        ({"metric_key": "loss"}, 400, "INVALID_PARAMETER_VALUE", "run_id"),
        ({"run_id": "RUN", "metric_key": "x\x00"}, 400, "INVALID_PARAMETER_VALUE", "metric_key"),
        ({"run_id": "RUN"}, 400, "INVALID_PARAMETER_VALUE", "metric_key"),
        (
            {"run_id": "RUN", "metric_key": "loss", "max_results": 50001},
            400,
            "INVALID_PARAMETER_VALUE",
            "max_results",
        ),
        (
            {"run_id": "RUN", "metric_key": "loss", "max_results": "all"},
            400,
            "INVALID_PARAMETER_VALUE",
            "max_results",
        ),
        (
            {"run_id": "RUN", "metric_key": "loss", "page_token": "%%%"},
            400,
            "INVALID_PARAMETER_VALUE",
            "page_token",
        ),
    ],
)
def test_bad_history_requests_name_the_field(wire, curve_run, message, status, code, field):
    if message.get("run_id") == "RUN":
        message["run_id"] = curve_run.uuid
    text = wire.error("GET", "metrics/get-history", message, status=status, code=code)
    assert field in text


# get-history-bulk-interval ----------------------------------------------------------------


@pytest.fixture
def long_runs(contributor, experiment):
    """Three runs with 1,000 points of 'loss' each (a NaN at step 500 in the first)."""
    runs = []
    for index in range(3):
        run = start_run(actor=contributor, experiment=experiment, name=f"long-{index}")
        points = [
            MetricInput(
                "loss",
                float("nan") if (index, step) == (0, 500) else (step % 37) / (index + 1),
                step,
                T0 + step,
            )
            for step in range(1000)
        ]
        log_batch(actor=contributor, run=run, metrics=points)
        runs.append(run)
    return runs


def bulk(wire, runs, **message) -> list[dict]:
    query = {"run_ids": [run.uuid for run in runs], "metric_key": "loss", **message}
    return wire.ok("GET", "metrics/get-history-bulk-interval", query)["metrics"]


def test_bulk_interval_samples_each_run_keeping_its_first_and_last_point(wire, long_runs):
    shown = bulk(wire, long_runs, max_results=100)
    by_run: dict[str, list[dict]] = {}
    for point in shown:
        assert set(point) == {"key", "value", "timestamp", "step", "run_id"}
        by_run.setdefault(point["run_id"], []).append(point)
    assert list(by_run) == sorted(run.uuid for run in long_runs)
    for run in long_runs:
        steps = [point["step"] for point in by_run[run.uuid]]
        assert steps == sorted(steps)
        assert steps[0] == 0 and steps[-1] == 999
        assert 50 <= len(steps) <= 101  # about max_results; a NaN point is kept besides
    nan_point = next(p for p in by_run[long_runs[0].uuid] if p["step"] == 500)
    assert nan_point["value"] == "NaN"


def test_bulk_interval_reads_only_the_step_window(wire, long_runs):
    shown = bulk(wire, long_runs[:1], start_step=100, end_step=119, max_results=2500)
    assert [point["step"] for point in shown] == list(range(100, 120))
    assert shown[0] == {
        "key": "loss",
        "value": (100 % 37) / 1,
        "timestamp": T0 + 100,
        "step": 100,
        "run_id": long_runs[0].uuid,
    }


@pytest.mark.parametrize("max_results", [1, 2])
def test_bulk_interval_with_tiny_max_results_keeps_the_last_points(wire, long_runs, max_results):
    steps = [point["step"] for point in bulk(wire, long_runs[:1], max_results=max_results)]
    assert steps == [0, 999][-max_results:]


def test_bulk_interval_of_an_unknown_key_is_empty(wire, long_runs):
    assert bulk(wire, long_runs, metric_key="never") == []


@pytest.mark.parametrize(
    ("message", "status", "code", "field"),
    [
        ({"max_results": 2501}, 400, "INVALID_PARAMETER_VALUE", "max_results"),
        ({"max_results": 0}, 400, "INVALID_PARAMETER_VALUE", "max_results"),
        ({"start_step": 10, "end_step": 5}, 400, "INVALID_PARAMETER_VALUE", "start_step"),
        ({"run_ids": []}, 400, "INVALID_PARAMETER_VALUE", "run_ids"),
        ({"run_ids": ["0" * 32]}, 404, "RESOURCE_DOES_NOT_EXIST", "run_ids"),
        ({"run_ids": ["bad id"]}, 400, "INVALID_PARAMETER_VALUE", "run_ids"),
        ({"run_ids": [f"{i:032x}" for i in range(101)]}, 400, "INVALID_PARAMETER_VALUE", "run_ids"),
        ({"metric_key": ""}, 400, "INVALID_PARAMETER_VALUE", "metric_key"),
    ],
)
def test_bad_bulk_requests_name_the_field(wire, long_runs, message, status, code, field):
    query = {"run_ids": [long_runs[0].uuid], "metric_key": "loss", **message}
    text = wire.error("GET", "metrics/get-history-bulk-interval", query, status=status, code=code)
    assert field in text


def test_bulk_interval_spans_experiments(wire, long_runs, contributor):
    other = start_run(actor=contributor, experiment=Experiment.objects.create(name="other"), name="x")
    log_batch(actor=contributor, run=other, metrics=[MetricInput("loss", 2.0, 0, T0)])
    shown = bulk(wire, [long_runs[0], other], max_results=10)
    assert {point["run_id"] for point in shown} == {long_runs[0].uuid, other.uuid}
