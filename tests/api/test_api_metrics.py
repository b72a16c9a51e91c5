"""A run's metrics over the API: summaries, paged history and downsampled series."""

from __future__ import annotations

import base64
import json
import math

import pytest

from tests.api.api_helpers import error
from tracker.services import MetricInput, log_batch


def _log(run, actor, key: str, values: list[float], first_step: int = 0) -> None:
    points = [MetricInput(key, value, first_step + i, 1_000 + i) for i, value in enumerate(values)]
    for start in range(0, len(points), 1000):
        log_batch(actor=actor, run=run, metrics=points[start : start + 1000])


def test_metric_list_gives_each_keys_summary(viewer_api, run, contributor):
    _log(run, contributor, "train/loss", [3.0, 1.0, 2.0])
    _log(run, contributor, "acc", [0.5])

    response = viewer_api.get(f"/api/v1/runs/{run.uuid}/metrics")

    assert response.json() == {
        "metrics": [
            {"key": "acc", "value": 0.5, "step": 0, "timestamp": 1000, "min": 0.5, "max": 0.5, "count": 1},
            {
                "key": "train/loss",
                "value": 2.0,
                "step": 2,
                "timestamp": 1002,
                "min": 1.0,
                "max": 3.0,
                "count": 3,
            },
        ]
    }


def test_history_of_a_key_with_slashes_pages_through_every_point(viewer_api, run, contributor):
    _log(run, contributor, "train/loss", [float(i) for i in range(25)])

    steps, token, pages = [], None, 0
    while True:
        query = {"max_results": 10, **({"page_token": token} if token else {})}
        body = viewer_api.get(f"/api/v1/runs/{run.uuid}/metrics/train/loss/history", query).json()
        assert body["key"] == "train/loss"
        steps += [point["step"] for point in body["points"]]
        token, pages = body["next_page_token"], pages + 1
        if not token:
            break

    assert steps == list(range(25))
    assert pages == 3


def test_history_of_an_unknown_key_is_empty(viewer_api, run):
    body = viewer_api.get(f"/api/v1/runs/{run.uuid}/metrics/nope/history").json()

    assert body == {"key": "nope", "points": [], "next_page_token": None}


def test_history_with_a_token_from_another_listing_is_a_400(viewer_api, run, contributor):
    _log(run, contributor, "loss", [1.0, 2.0])
    foreign = base64.urlsafe_b64encode(json.dumps(["2024-01-01T00:00:00"]).encode()).decode()

    response = viewer_api.get(f"/api/v1/runs/{run.uuid}/metrics/loss/history", {"page_token": foreign})

    assert response.status_code == 400
    assert error(response)["message"] == "page_token: Invalid page token"


def test_history_with_a_garbled_token_is_a_400(viewer_api, run, contributor):
    _log(run, contributor, "loss", [1.0, 2.0])

    response = viewer_api.get(f"/api/v1/runs/{run.uuid}/metrics/loss/history", {"page_token": "%%%"})

    assert response.status_code == 400
    assert error(response)["message"] == "page_token: Invalid page token"


def test_long_series_is_downsampled_keeping_first_and_last_points(viewer_api, run, contributor):
    values = [math.sin(i / 100) + i / 5000 for i in range(10_000)]
    _log(run, contributor, "loss", values)

    body = viewer_api.get(f"/api/v1/runs/{run.uuid}/metrics/loss/series", {"max_points": 500}).json()

    assert body["downsampled"] is True
    assert body["total_points"] == 10_000
    assert len(body["steps"]) == len(body["values"]) <= 510
    assert (body["steps"][0], body["steps"][-1]) == (0, 9_999)
    assert body["values"][-1] == pytest.approx(values[-1])
    assert body["steps"] == sorted(body["steps"])


def test_short_series_comes_back_whole_with_nan_as_a_string(viewer_api, run, contributor):
    _log(run, contributor, "loss", [1.0, math.nan, math.inf])

    response = viewer_api.get(f"/api/v1/runs/{run.uuid}/metrics/loss/series")

    body = json.loads(response.content, parse_constant=lambda token: pytest.fail(f"bare {token}"))
    assert body == {
        "run_id": run.uuid,
        "key": "loss",
        "steps": [0, 1, 2],
        "values": [1.0, "NaN", "Infinity"],
        "total_points": 3,
        "downsampled": False,
    }


def test_series_window_reads_only_the_steps_asked_for(viewer_api, run, contributor):
    _log(run, contributor, "loss", [float(i) for i in range(100)])

    only_min = viewer_api.get(f"/api/v1/runs/{run.uuid}/metrics/loss/series", {"x_min": 90}).json()
    window = viewer_api.get(
        f"/api/v1/runs/{run.uuid}/metrics/loss/series", {"x_min": 10.5, "x_max": 19.2}
    ).json()

    assert only_min["steps"] == list(range(90, 100))
    assert window["steps"] == list(range(10, 21))


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ({"max_points": 5}, "max_points", "max_points: Ensure this value is greater than or equal to 10."),
        (
            {"max_points": 10**9},
            "max_points",
            "max_points: Ensure this value is less than or equal to 20000.",
        ),
        ({"x_min": 5, "x_max": 1}, "x_max", "x_max: must not be less than x_min"),
        ({"x_min": "1e300"}, "x_min", "x_min: Ensure this value is less than or equal to 9.2e+18."),
        ({"x_max": "nan"}, "x_max", "x_max: A valid number is required."),
        ({"x_max": "inf"}, "x_max", "x_max: A valid number is required."),
    ],
)
def test_bad_series_query_is_a_400(viewer_api, run, contributor, query, field, message):
    _log(run, contributor, "loss", [1.0])

    response = viewer_api.get(f"/api/v1/runs/{run.uuid}/metrics/loss/series", query)

    assert response.status_code == 400
    assert error(response) == {"error_code": "INVALID_PARAMETER_VALUE", "message": message, "field": field}


def test_series_of_an_unknown_key_is_a_404(viewer_api, run):
    response = viewer_api.get(f"/api/v1/runs/{run.uuid}/metrics/nope/series")

    assert response.status_code == 404
    assert error(response)["message"] == f"key: run {run.uuid} has no metric 'nope'"
