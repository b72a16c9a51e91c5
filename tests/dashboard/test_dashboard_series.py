"""The chart-data endpoint: many runs and keys per request, downsampled, zoom windows, live tails,
group bands, NaN as null, clear errors and a query budget."""

from __future__ import annotations

import json
import math

import pytest
from django.urls import reverse

from dashboard.charts import series_payload
from tracker.selectors import ChartSeries

URL = "/charts/series.json"


@pytest.fixture
def long_run(make_experiment, make_run):
    values = [math.sin(step / 50) + step / 5000 for step in range(5000)]
    return make_run(make_experiment(), "long", metrics={"train/loss": values})


def test_the_endpoint_is_named_chart_series():
    assert reverse("dashboard:chart-series") == URL


def test_a_5000_point_series_is_downsampled_keeping_first_and_last(viewer_client, long_run):
    response = viewer_client.get(URL, {"runs": long_run.uuid, "keys": "train/loss", "max_points": 500})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    (body,) = response.json()["series"]
    assert body["downsampled"] is True
    assert body["totalPoints"] == 5000
    assert 10 <= len(body["steps"]) <= 500
    assert len(body["values"]) == len(body["steps"]) == len(body["timestamps"])
    assert body["steps"][0] == 0
    assert body["steps"][-1] == 4999
    assert body["values"][-1] == pytest.approx(math.sin(4999 / 50) + 4999 / 5000)
    assert body["steps"] == sorted(body["steps"])


def test_a_zoom_window_returns_finer_data_for_that_range(viewer_client, long_run):
    response = viewer_client.get(
        URL,
        {"runs": long_run.uuid, "keys": "train/loss", "max_points": 500, "x_min": 1000.4, "x_max": 1199.6},
    )
    (body,) = response.json()["series"]
    assert body["downsampled"] is False
    # The window is widened to whole steps, so the line reaches both edges of the chart.
    assert body["steps"] == list(range(1000, 1201))


def test_after_step_returns_only_new_points_for_a_live_chart(viewer_client, make_experiment, make_run):
    run = make_run(make_experiment(), "live", metrics={"loss": [0.9, 0.8, 0.7, 0.6]}, finished=False)
    body = viewer_client.get(URL, {"runs": run.uuid, "keys": "loss", "after_step": 1}).json()
    assert body["series"][0]["steps"] == [2, 3]
    assert body["running"] == [run.uuid]


def test_several_runs_and_keys_come_back_from_one_request_within_a_query_budget(
    viewer_client, make_experiment, make_run, django_assert_max_num_queries
):
    experiment = make_experiment()
    runs = [
        make_run(experiment, f"r{i}", metrics={"loss": [1.0, 0.5 - i / 10], "acc": [0.1 * i]})
        for i in range(4)
    ]
    query = {"runs": [run.uuid for run in runs], "keys": ["loss", "acc"]}
    # session + user + role, the runs and their params/tags/summaries/datasets, then the chart reads
    with django_assert_max_num_queries(12):
        body = viewer_client.get(URL, query).json()
    assert [(s["runId"], s["key"]) for s in body["series"]] == [
        (run.uuid, key) for run in runs for key in ("loss", "acc")
    ]
    assert body["series"][3]["values"] == [0.1]
    assert body["running"] == []


def test_group_by_returns_a_mean_line_with_a_min_max_band_per_group(viewer_client, make_experiment, make_run):
    experiment = make_experiment()
    runs = [
        make_run(experiment, "a1", params={"opt": "adam"}, metrics={"loss": [1.0, 0.8, 0.6]}),
        make_run(experiment, "a2", params={"opt": "adam"}, metrics={"loss": [3.0, 1.2, 1.0]}),
        make_run(experiment, "s1", params={"opt": "sgd"}, metrics={"loss": [2.0, 2.0, 2.0]}),
    ]
    body = viewer_client.get(URL, {"runs": [r.uuid for r in runs], "keys": "loss", "group_by": "opt"}).json()
    adam, sgd = body["groups"]
    assert (adam["label"], adam["runIds"]) == ("adam", [runs[0].uuid, runs[1].uuid])
    assert adam["steps"] == [0, 1, 2]
    assert adam["mean"] == pytest.approx([2.0, 1.0, 0.8])
    assert adam["low"] == [1.0, 0.8, 0.6]
    assert adam["high"] == [3.0, 1.2, 1.0]
    assert (sgd["label"], sgd["mean"]) == ("sgd", [2.0, 2.0, 2.0])


def test_a_short_series_comes_back_whole_with_nan_as_null(viewer_client, make_experiment, make_run):
    run = make_run(make_experiment(), "r", metrics={"loss": [0.5, math.nan, 0.25]})
    response = viewer_client.get(URL, {"runs": run.uuid, "keys": "loss"})
    assert json.loads(response.content)["series"] == [
        {
            "runId": run.uuid,
            "key": "loss",
            "steps": [0, 1, 2],
            "timestamps": [1, 1, 1],
            "values": [0.5, None, 0.25],
            "totalPoints": 3,
            "downsampled": False,
        }
    ]


def test_infinity_becomes_null_so_the_body_stays_strict_json():
    series = ChartSeries("r" * 32, "loss", [0, 1, 2], [1, 2, 3], [math.inf, -math.inf, 1.0], 3, False)
    assert series_payload(series)["values"] == [None, None, 1.0]


def test_an_unknown_metric_is_an_empty_series(viewer_client, long_run):
    body = viewer_client.get(URL, {"runs": long_run.uuid, "keys": "nope"}).json()
    assert body["series"][0]["steps"] == []


def test_an_unknown_run_is_a_404_naming_it(viewer_client):
    response = viewer_client.get(URL, {"runs": "f" * 32, "keys": "loss"})
    assert response.status_code == 404
    assert response.json() == {
        "error_code": "RESOURCE_DOES_NOT_EXIST",
        "message": f"runs: run {'f' * 32!r} does not exist",
        "field": "runs",
    }


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ({"max_points": "lots"}, "max_points", "Enter a whole number."),
        ({"max_points": "5"}, "max_points", "Ensure this value is greater than or equal to 10."),
        ({"x_min": "nan", "x_max": "3"}, "x_min", "Enter a number."),
        ({"x_min": "1"}, None, "x_min and x_max must be given together"),
        ({"x_min": "5", "x_max": "1"}, None, "x_min must not be greater than x_max"),
        ({"after_step": "soon"}, "after_step", "Enter a whole number."),
        ({"runs": "../etc"}, "runs", "'../etc' is not a 32-character hexadecimal run id"),
        ({"keys": [f"k{i}" for i in range(21)]}, "keys", "at most 20 values, got 21"),
    ],
)
def test_bad_query_parameters_are_a_400_naming_the_field(viewer_client, long_run, query, field, message):
    response = viewer_client.get(URL, {"runs": long_run.uuid, "keys": "train/loss", **query})
    assert response.status_code == 400
    body = response.json()
    assert body["field"] == field
    assert body["message"] == (f"{field}: {message}" if field else message)


def test_no_runs_is_a_400(viewer_client):
    response = viewer_client.get(URL, {"keys": "loss"})
    assert response.status_code == 400
    assert response.json()["message"] == "runs: This field is required."


def test_anonymous_users_are_sent_to_log_in(client, long_run):
    response = client.get(URL, {"runs": long_run.uuid, "keys": "train/loss"})
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
