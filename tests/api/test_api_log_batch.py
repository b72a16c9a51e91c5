"""POST /api/v1/runs/<run_id>/log-batch: the ingestion hot path."""

from __future__ import annotations

import json
import math

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.api.api_helpers import error
from tracker.models import MetricPoint, MetricSummary, Param


def _batch_url(run) -> str:
    return f"/api/v1/runs/{run.uuid}/log-batch"


def _points(count: int, key: str = "loss", start: int = 0) -> list[dict]:
    return [
        {"key": key, "value": 1.0 / (i + 1), "step": i, "timestamp": 1_000 + i}
        for i in range(start, start + count)
    ]


def test_batch_logs_metrics_params_and_tags_and_says_what_it_stored(contributor_api, run):
    response = contributor_api.post(
        _batch_url(run),
        {
            "metrics": _points(3) + _points(2, key="val/acc"),
            "params": [{"key": "lr", "value": "0.01"}, {"key": "epochs", "value": "10"}],
            "tags": [{"key": "team", "value": "vision"}],
        },
        format="json",
    )

    assert response.status_code == 200
    assert response.json() == {
        "run_id": run.uuid,
        "points_received": 5,
        "points_inserted": 5,
        "params_logged": 2,
        "tags_set": 1,
        "metric_keys": ["loss", "val/acc"],
    }
    assert dict(Param.objects.filter(run=run).values_list("key", "value")) == {"lr": "0.01", "epochs": "10"}


def test_nan_and_infinity_round_trip_as_strings(contributor_api, run):
    contributor_api.post(
        _batch_url(run),
        {
            "metrics": [
                {"key": "loss", "value": 0.5, "step": 0, "timestamp": 1},
                {"key": "loss", "value": "Infinity", "step": 1, "timestamp": 2},
                {"key": "loss", "value": "-Infinity", "step": 2, "timestamp": 3},
                {"key": "loss", "value": "NaN", "step": 3, "timestamp": 4},
            ]
        },
        format="json",
    )

    history = contributor_api.get(f"/api/v1/runs/{run.uuid}/metrics/loss/history")
    detail = contributor_api.get(f"/api/v1/runs/{run.uuid}")

    # Valid JSON: Python's parser would accept bare NaN tokens, so parse strictly.
    strict = json.loads(history.content, parse_constant=lambda token: pytest.fail(f"bare {token} in JSON"))
    assert [p["value"] for p in strict["points"]] == [0.5, "Infinity", "-Infinity", "NaN"]
    summary = json.loads(detail.content, parse_constant=lambda token: pytest.fail(f"bare {token}"))[
        "metrics"
    ]["loss"]
    assert (summary["value"], summary["min"], summary["max"], summary["count"]) == (
        "NaN",
        "-Infinity",
        "Infinity",
        4,
    )


def test_exact_resend_of_a_batch_inserts_nothing_new(contributor_api, run):
    batch = {"metrics": _points(100), "params": [{"key": "lr", "value": "0.01"}]}

    first = contributor_api.post(_batch_url(run), batch, format="json").json()
    again = contributor_api.post(_batch_url(run), batch, format="json").json()

    assert (first["points_inserted"], again["points_inserted"]) == (100, 0)
    assert again["points_received"] == 100
    assert again["params_logged"] == 0
    assert MetricPoint.objects.filter(run=run).count() == 100
    assert MetricSummary.objects.get(run=run).count == 100


def test_param_logged_again_with_another_value_is_a_409_naming_both(contributor_api, run):
    contributor_api.post(_batch_url(run), {"params": [{"key": "lr", "value": "0.01"}]}, format="json")

    response = contributor_api.post(
        _batch_url(run),
        {"metrics": _points(5), "params": [{"key": "lr", "value": "0.02"}]},
        format="json",
    )

    assert response.status_code == 409
    assert error(response) == {
        "error_code": "RESOURCE_CONFLICT",
        "message": "params.lr: param 'lr' was already logged as '0.01'; it cannot be changed to '0.02'",
        "field": "params.lr",
    }
    assert MetricPoint.objects.filter(run=run).count() == 0  # all or nothing


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ([], "body", "body: must be a JSON object with metrics, params and tags"),
        ({"metrics": {"key": "loss"}}, "metrics", "metrics: must be a list of objects"),
        ({"metrics": [*_points(12), "loss"]}, "metrics[12]", "metrics[12]: must be an object"),
        ({"metrics": [{"value": 1.0}]}, "metrics[0].key", "metrics[0].key: is required"),
        ({"metrics": [{"key": "loss"}]}, "metrics[0].value", "metrics[0].value: is required"),
        (
            {"params": [{"key": "lr", "value": 0.1}]},
            "params[0].value",
            "params[0].value: must be a string, not a number",
        ),
        (
            {"tags": [{"key": "team", "value": ["nlp"]}]},
            "tags[0].value",
            "tags[0].value: must be a string, not a list",
        ),
        (
            {"metrics": [{"key": "loss\n", "value": 1.0}]},
            "metrics[0].key",
            "metrics[0].key: 'loss\\n' may only contain letters, digits, underscores, dashes, periods, "
            "spaces, colons and slashes",
        ),
        (
            {"metrics": [*_points(12), {"key": "loss", "value": "high", "step": 1}]},
            "metrics[12].value",
            "metrics[12].value: must be a number, not 'high'",
        ),
        (
            {"metrics": [{"key": "loss", "value": True}]},
            "metrics[0].value",
            "metrics[0].value: must be a number, not a boolean",
        ),
        (
            {"metrics": [{"key": "loss", "value": 1, "step": 1e30}]},
            "metrics[0].step",
            f"metrics[0].step: {int(1e30)} is outside the range -9223372036854775808..9223372036854775807",
        ),
        (
            {"metrics": [{"key": "loss", "value": 1, "step": 1.5}]},
            "metrics[0].step",
            "metrics[0].step: must be an integer, not 1.5",
        ),
        (
            {"metrics": [{"key": "loss", "value": 1, "timestamp": -5}]},
            "metrics[0].timestamp",
            "metrics[0].timestamp: -5 is outside the range 0..9223372036854775807",
        ),
        (
            {"metrics": [{"key": "", "value": 1}]},
            "metrics[0].key",
            "metrics[0].key: must be a non-empty string",
        ),
        (
            {"metrics": [{"key": "../up", "value": 1}]},
            "metrics[0].key",
            "metrics[0].key: '../up' must be a normalised relative path (no '..', no leading '/')",
        ),
        ({"metrics": _points(1001)}, "metrics", "metrics: 1001 items in one batch; the limit is 1000"),
        ({"params": [{"key": "lr"}]}, "params[0].value", "params[0].value: is required"),
        (
            {"params": [{"key": "lr", "value": "x" * 6001}]},
            "params[0].value",
            "params[0].value: is 6001 characters long; the limit is 6000",
        ),
        ({"tags": "team=vision"}, "tags", "tags: must be a list of objects"),
        (
            {"tags": [{"key": "team", "value": 3}]},
            "tags[0].value",
            "tags[0].value: must be a string, not a number",
        ),
        ({"metric": []}, "metric", "metric: is not a log-batch field (metrics, params, tags)"),
    ],
)
def test_bad_batch_is_a_400_naming_the_field_and_stores_nothing(contributor_api, run, body, field, message):
    response = contributor_api.post(_batch_url(run), body, format="json")

    assert response.status_code == 400
    assert error(response) == {"error_code": "INVALID_PARAMETER_VALUE", "message": message, "field": field}
    assert MetricPoint.objects.filter(run=run).count() == 0


def test_huge_float_values_are_stored_as_infinity(contributor_api, run):
    response = contributor_api.generic(
        "POST",
        _batch_url(run),
        '{"metrics": [{"key": "loss", "value": 1e999, "step": 0, "timestamp": 1}]}',
        content_type="application/json",
    )

    assert response.status_code == 200
    assert MetricPoint.objects.get(run=run).value == math.inf


def test_bare_nan_token_is_refused_because_it_is_not_json(contributor_api, run):
    response = contributor_api.generic(
        "POST",
        _batch_url(run),
        '{"metrics": [{"key": "loss", "value": NaN}]}',
        content_type="application/json",
    )

    assert response.status_code == 400
    assert error(response)["field"] == "body"


def test_malformed_batch_json_is_a_400(contributor_api, run):
    response = contributor_api.generic(
        "POST", _batch_url(run), '{"metrics": [', content_type="application/json"
    )

    assert response.status_code == 400
    assert error(response)["field"] == "body"


def test_batch_sent_as_a_form_is_refused_with_415(contributor_api, run):
    response = contributor_api.post(_batch_url(run), {"metrics": "x"}, format="multipart")

    assert response.status_code == 415
    assert error(response)["error_code"] == "UNSUPPORTED_MEDIA_TYPE"


def test_batch_to_an_unknown_run_is_a_404(contributor_api, db):
    response = contributor_api.post(
        "/api/v1/runs/ffffffffffffffffffffffffffffffff/log-batch", {}, format="json"
    )

    assert response.status_code == 404
    assert error(response)["field"] == "run_id"


@pytest.mark.usefixtures("postgres_statements")
def test_a_batch_takes_the_same_few_queries_whatever_its_size(contributor_api, run):
    # First use: stamps the token, creates the metric key and stores the param.
    contributor_api.post(
        _batch_url(run), {"metrics": _points(1), "params": [{"key": "lr", "value": "0.1"}]}, format="json"
    )

    def queries_for(points: list[dict]) -> int:
        with CaptureQueriesContext(connection) as captured:
            response = contributor_api.post(
                _batch_url(run), {"metrics": points, "params": [{"key": "lr", "value": "0.1"}]}, format="json"
            )
        assert response.json()["points_inserted"] == len(points)
        return len(captured)

    small = queries_for(_points(10, start=1))
    medium, full = queries_for(_points(100, start=11)), queries_for(_points(1000, start=111))

    assert medium == full
    assert small <= full  # a few points skip COPY's savepoint on PostgreSQL
    assert full <= 16  # auth 2, run 1, its permission 1, then the service's transaction (savepoints count)


def test_a_body_over_the_upload_limit_is_a_413_naming_the_body(contributor_api, run, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
    body = json.dumps({"metrics": _points(1000), "padding": "x" * 1024 * 1024})
    response = contributor_api.generic("POST", _batch_url(run), body, content_type="application/json")

    assert response.status_code == 413
    assert error(response) == {
        "error_code": "REQUEST_TOO_LARGE",
        "message": "body: the request body is larger than the 1 MiB limit",
        "field": "body",
    }
    assert MetricPoint.objects.filter(run=run).count() == 0
