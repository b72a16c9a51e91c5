"""GET /api/v1/metrics/series: many runs and keys in one request, reduced on the server."""

from __future__ import annotations

import json
import math

import pytest

from tests.factories import RunFactory
from tracker.services import MetricInput, log_batch

URL = "/api/v1/metrics/series"


def _log(run, actor, key: str, values: list[float]) -> None:
    points = [MetricInput(key, value, i, 1_000 + i) for i, value in enumerate(values)]
    for start in range(0, len(points), 1000):
        log_batch(actor=actor, run=run, metrics=points[start : start + 1000])


def test_several_runs_and_keys_come_back_in_one_response(viewer_api, run, contributor):
    other = RunFactory(experiment=run.experiment, user=contributor, name="other")
    _log(run, contributor, "loss", [1.0, math.nan, math.inf])
    _log(other, contributor, "loss", [5.0])
    _log(other, contributor, "acc", [0.5, 0.6])

    response = viewer_api.get(URL, {"run_ids": [run.uuid, other.uuid], "keys": ["loss", "acc"]})

    assert response.status_code == 200
    body = json.loads(response.content, parse_constant=lambda token: pytest.fail(f"bare {token}"))
    empty = {"steps": [], "timestamps": [], "values": [], "total_points": 0, "downsampled": False}
    assert body == {
        "series": [
            {
                "run_id": run.uuid,
                "key": "loss",
                "steps": [0, 1, 2],
                "timestamps": [1000, 1001, 1002],
                "values": [1.0, "NaN", "Infinity"],
                "total_points": 3,
                "downsampled": False,
            },
            {"run_id": run.uuid, "key": "acc", **empty},
            {
                "run_id": other.uuid,
                "key": "loss",
                "steps": [0],
                "timestamps": [1000],
                "values": [5.0],
                "total_points": 1,
                "downsampled": False,
            },
            {
                "run_id": other.uuid,
                "key": "acc",
                "steps": [0, 1],
                "timestamps": [1000, 1001],
                "values": [0.5, 0.6],
                "total_points": 2,
                "downsampled": False,
            },
        ]
    }


def test_a_long_series_is_downsampled_and_keeps_its_spike(viewer_api, run, contributor):
    values = [math.cos(i / 40) for i in range(5000)]
    values[3210] = 99.0
    _log(run, contributor, "loss", values)
    (series,) = viewer_api.get(URL, {"run_ids": run.uuid, "keys": "loss", "max_points": 200}).json()["series"]
    assert series["downsampled"] is True and series["total_points"] == 5000
    assert len(series["steps"]) <= 200
    assert series["values"][series["steps"].index(3210)] == 99.0


def test_after_step_and_windows_read_only_those_steps(viewer_api, run, contributor):
    _log(run, contributor, "loss", [float(i) for i in range(50)])
    (tail,) = viewer_api.get(URL, {"run_ids": run.uuid, "keys": "loss", "after_step": 47}).json()["series"]
    assert tail["steps"] == [48, 49]
    (window,) = viewer_api.get(URL, {"run_ids": run.uuid, "keys": "loss", "x_min": 10, "x_max": 12}).json()[
        "series"
    ]
    assert window["steps"] == [10, 11, 12]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"keys": "loss"}, "run_ids: This field is required."),
        (
            {"run_ids": "RUN", "keys": "loss", "max_points": 3},
            "max_points: Ensure this value is greater than or equal to 10.",
        ),
        ({"run_ids": "RUN", "keys": "loss", "x_min": 5, "x_max": 1}, "x_max: must not be less than x_min"),
        (
            {"run_ids": "RUN", "keys": [f"k{i}" for i in range(21)]},
            "keys: Ensure this field has no more than 20 elements.",
        ),
    ],
)
def test_bad_queries_are_400s_naming_the_field(viewer_api, run, query, message):
    query = {k: (run.uuid if v == "RUN" else v) for k, v in query.items()}
    response = viewer_api.get(URL, query)
    assert response.status_code == 400
    assert response.json()["message"] == message


def test_an_unknown_run_is_a_404_naming_it(viewer_api):
    response = viewer_api.get(URL, {"run_ids": "f" * 32, "keys": "loss"})
    assert response.status_code == 404
    assert response.json()["message"] == f"run_ids: run {'f' * 32!r} does not exist"


def test_the_endpoint_is_in_the_openapi_schema(viewer_api):
    schema = viewer_api.get("/api/schema/", {"format": "json"}).json()
    assert "/api/v1/metrics/series" in schema["paths"]


def test_anonymous_callers_are_refused(anonymous_client, run):
    assert anonymous_client.get(URL, {"run_ids": run.uuid, "keys": "loss"}).status_code == 401
