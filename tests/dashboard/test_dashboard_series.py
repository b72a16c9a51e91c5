"""The chart-data endpoint: downsampled series, zoom windows, NaN as null, clear errors."""

from __future__ import annotations

import json
import math

import pytest
from django.urls import reverse

from dashboard.charts import series_payload
from tracker.selectors import Series


@pytest.fixture
def long_run(make_experiment, make_run):
    values = [math.sin(step / 50) + step / 5000 for step in range(5000)]
    return make_run(make_experiment(), "long", metrics={"train/loss": values})


def series_url(run, key: str) -> str:
    return reverse("dashboard:metric-series", args=[run.uuid, key])


def test_a_5000_point_series_is_downsampled_keeping_first_and_last(viewer_client, long_run):
    response = viewer_client.get(series_url(long_run, "train/loss"), {"max_points": 500})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["downsampled"] is True
    assert body["totalPoints"] == 5000
    assert 10 <= len(body["steps"]) <= 500
    assert len(body["values"]) == len(body["steps"])
    assert body["steps"][0] == 0
    assert body["steps"][-1] == 4999
    assert body["values"][-1] == pytest.approx(math.sin(4999 / 50) + 4999 / 5000)
    assert body["steps"] == sorted(body["steps"])


def test_a_zoom_window_returns_finer_data_for_that_range(viewer_client, long_run):
    body = viewer_client.get(
        series_url(long_run, "train/loss"), {"max_points": 500, "x_min": 1000.4, "x_max": 1199.6}
    ).json()
    assert body["downsampled"] is False
    # The window is widened to whole steps, so the line reaches both edges of the chart.
    assert body["steps"] == list(range(1000, 1201))


def test_a_short_series_comes_back_whole_with_nan_as_null(viewer_client, make_experiment, make_run):
    run = make_run(make_experiment(), "r", metrics={"loss": [0.5, math.nan, 0.25]})
    response = viewer_client.get(series_url(run, "loss"))
    assert json.loads(response.content) == {
        "runId": run.uuid,
        "key": "loss",
        "steps": [0, 1, 2],
        "values": [0.5, None, 0.25],
        "totalPoints": 3,
        "downsampled": False,
    }


def test_infinity_becomes_null_so_the_body_stays_strict_json():
    series = Series("r" * 32, "loss", [0, 1, 2], [math.inf, -math.inf, 1.0], 3, False)
    assert series_payload(series)["values"] == [None, None, 1.0]


def test_an_unknown_metric_is_a_404_naming_the_key(viewer_client, long_run):
    response = viewer_client.get(series_url(long_run, "nope"))
    assert response.status_code == 404
    assert response.json() == {
        "error_code": "RESOURCE_DOES_NOT_EXIST",
        "message": f"key: run {long_run.uuid} has no metric 'nope'",
        "field": "key",
    }


def test_an_unknown_run_is_a_404(viewer_client):
    response = viewer_client.get(reverse("dashboard:metric-series", args=["f" * 32, "loss"]))
    assert response.status_code == 404
    assert response.json()["field"] == "run_id"


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ({"max_points": "lots"}, "max_points", "Enter a whole number."),
        ({"max_points": "5"}, "max_points", "Ensure this value is greater than or equal to 10."),
        ({"x_min": "nan", "x_max": "3"}, "x_min", "Enter a number."),
        ({"x_min": "1"}, None, "x_min and x_max must be given together"),
        ({"x_min": "5", "x_max": "1"}, None, "x_min must not be greater than x_max"),
    ],
)
def test_bad_query_parameters_are_a_400_naming_the_field(viewer_client, long_run, query, field, message):
    response = viewer_client.get(series_url(long_run, "train/loss"), query)
    assert response.status_code == 400
    body = response.json()
    assert body["field"] == field
    assert body["message"] == (f"{field}: {message}" if field else message)
