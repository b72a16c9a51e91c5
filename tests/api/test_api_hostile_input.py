"""Hostile input on the native API gets a 4xx that names its field, never a 500 (issue #11 §1).

Each case here once answered Django's HTML server error page: page tokens holding values no
column can hold, JSON nested past orjson's depth limit, NUL characters and non-finite numbers
in a run's environment, artifact names longer than a filesystem allows, a file where a folder
must go, and a POST to an unknown URL without a CSRF token.
"""

from __future__ import annotations

import io

import pytest
from django.test import Client

from tests.api.api_helpers import error, url
from tests.page_tokens import forged_token, run_sort
from tracker.models import Artifact

pytestmark = pytest.mark.django_db


# The tokens issue #11 lists, as JSON text: each would fit a sort's shape but holds a value
# out of its column's range (a duration of a billion days, a 64-bit overflow, a 400-digit
# integer, a time whose offset carries it past year 9999).
OUT_OF_RANGE_TOKENS = [
    '[86400000000000000000, "2026-01-01T00:00:00+00:00", "x"]',
    '[86400000000000000000, "9999-12-31T23:59:59-23:59", "x"]',
    '["9999-12-31T23:59:59-23:59", "x"]',
    '["0001-01-01T00:00:00+23:59", "x"]',
    "[9223372036854775808]",
    "[" + "9" * 400 + "]",
    '[1, 2, "3"]',
    '["2026-01-01T00:00:00", "x"]',  # a cursor time always carries its offset
]
ORDERS = [[], ["attributes.duration DESC"], ["attributes.start_time ASC"], ["metrics.loss DESC"]]


@pytest.fixture
def logged_run(run, contributor_api):
    """The run with one point of metric `loss`, so history and metric sorts have rows to page."""
    body = {"metrics": [{"key": "loss", "value": 0.5, "step": 1, "timestamp": 1_700_000_000_000}]}
    response = contributor_api.post(url("runs/{id}/log-batch", id=run.uuid), body, format="json")
    assert response.status_code == 200, response.content
    return run


def assert_invalid_token(response) -> None:
    assert response.status_code == 400, response.content
    assert error(response) == {
        "error_code": "INVALID_PARAMETER_VALUE",
        "message": "page_token: Invalid page token",
        "field": "page_token",
    }


@pytest.mark.parametrize("raw", OUT_OF_RANGE_TOKENS)
@pytest.mark.parametrize("order_by", ORDERS, ids=lambda order: order[0] if order else "default")
def test_run_list_refuses_a_page_token_holding_out_of_range_values(
    logged_run, contributor_api, raw, order_by
):
    page_token = forged_token(raw, signature=run_sort(order_by))
    query = {"experiment_id": logged_run.experiment_id, "order_by": order_by, "page_token": page_token}
    assert_invalid_token(contributor_api.get(url("runs"), query))


@pytest.mark.parametrize("raw", OUT_OF_RANGE_TOKENS)
def test_experiment_run_list_refuses_a_page_token_holding_out_of_range_values(
    logged_run, contributor_api, raw
):
    path = url("experiments/{id}/runs", id=logged_run.experiment_id)
    assert_invalid_token(contributor_api.get(path, {"page_token": forged_token(raw, signature=run_sort())}))


@pytest.mark.parametrize(
    "raw",
    [
        "[9223372036854775808, 1, 0.5, false]",  # step past 64 bits
        "[1, -9223372036854775809, 0.5, false]",  # timestamp past 64 bits
        "[1, 1, " + "9" * 400 + ", false]",  # a value no float holds
        '[1, 1, 0.5, "no"]',
        "[1, 1, 0.5]",
    ],
)
def test_metric_history_refuses_a_page_token_holding_out_of_range_values(logged_run, contributor_api, raw):
    path = url("runs/{id}/metrics/{key}/history", id=logged_run.uuid, key="loss")
    assert_invalid_token(contributor_api.get(path, {"page_token": forged_token(raw)}))


def test_a_page_token_holding_infinity_is_a_metric_value_not_an_error(logged_run, contributor_api):
    """Metric values may be infinite, so a cursor may hold one (1e400 reads as Infinity)."""
    query = {
        "experiment_id": logged_run.experiment_id,
        "order_by": ["metrics.loss DESC"],
        "page_token": forged_token(
            '[1e400, "2026-01-01T00:00:00+00:00", "x"]', signature=run_sort(["metrics.loss DESC"])
        ),
    }
    response = contributor_api.get(url("runs"), query)
    assert response.status_code == 200, response.content
    assert [run["run_id"] for run in response.json()["runs"]] == [logged_run.uuid]


def test_dashboard_run_table_refuses_a_page_token_holding_out_of_range_values(logged_run, contributor):
    client = Client()
    client.force_login(contributor)
    raw = '[86400000000000000000, "2026-01-01T00:00:00+00:00", "x"]'
    page_token = forged_token(raw, signature=run_sort(["attributes.duration DESC"]))
    query = {"order_by": "attributes.duration DESC", "page_token": page_token}
    response = client.get(f"/experiments/{logged_run.experiment_id}/runs/", query)
    assert response.status_code == 400
    assert "Invalid page token" in response.content.decode()


@pytest.mark.parametrize("depth", [1_000, 1_100, 5_000])
def test_json_nested_past_any_parser_limit_is_a_400_naming_the_body(run, contributor_api, depth):
    body = '{"metrics": ' + "[" * depth + "]" * depth + "}"
    response = contributor_api.generic(
        "POST", url("runs/{id}/log-batch", id=run.uuid), body, content_type="application/json"
    )
    assert response.status_code == 400, response.content
    assert error(response)["field"].startswith("body" if depth > 1_024 else "metrics")
    if depth > 1_024:  # past orjson's limit
        assert error(response)["message"] == "body: Malformed request body: JSON nested too deeply"


@pytest.mark.parametrize(
    ("environment", "field", "message"),
    [
        ('{"\\u0000": 1}', "environment", "keys must not contain NUL characters"),
        ('{"a": "x\\u0000y"}', "environment.a", "must not contain NUL characters"),
        ('{"a": 1e400}', "environment.a", "inf is not a finite number"),
        ('{"a": [1, -1e400]}', "environment.a[1]", "-inf is not a finite number"),
        ('{"a": ' + "[" * 100 + "]" * 100 + "}", "environment", "nests deeper than 64 levels"),
    ],
)
def test_run_create_refuses_an_environment_no_json_column_can_hold(
    experiment, contributor_api, environment, field, message
):
    body = f'{{"experiment_id": "{experiment.pk}", "environment": {environment}}}'
    response = contributor_api.generic("POST", url("runs"), body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert error(response) == {
        "error_code": "INVALID_PARAMETER_VALUE",
        "message": f"{field}: {message}",
        "field": field,
    }
    assert not experiment.runs.exists()


def test_run_create_keeps_an_ordinary_environment(experiment, contributor_api):
    environment = {"python": "3.12", "gpus": [{"name": "A100", "memory_gib": 80.0}], "cuda": None}
    body = {"experiment_id": str(experiment.pk), "environment": environment}
    response = contributor_api.post(url("runs"), body, format="json")
    assert response.status_code == 201, response.content
    assert experiment.runs.get().environment == environment


@pytest.mark.parametrize("path", ["x" * 300, "folder/" + "y" * 300 + ".txt", "é" * 121])
def test_artifact_names_longer_than_a_filesystem_allows_are_a_400_naming_the_path(run, contributor_api, path):
    response = contributor_api.put(
        url("runs/{id}/artifacts/", id=run.uuid) + path, b"data", content_type="application/octet-stream"
    )
    assert response.status_code == 400, response.content
    body = error(response)
    assert body["field"] == "path"
    assert body["message"].endswith("is longer than 240 bytes")
    assert not Artifact.objects.exists()


def test_multipart_upload_with_a_too_long_name_is_a_400_naming_the_path(run, contributor_api):
    upload = {"file": io.BytesIO(b"data"), "path": "z" * 300}
    response = contributor_api.post(url("runs/{id}/artifacts", id=run.uuid), upload, format="multipart")
    assert response.status_code == 400, response.content
    assert error(response)["field"] == "path"


def test_an_artifact_name_of_240_bytes_is_stored(run, contributor_api):
    response = contributor_api.put(
        url("runs/{id}/artifacts/", id=run.uuid) + "n" * 240, b"data", content_type="application/octet-stream"
    )
    assert response.status_code == 201, response.content


def _put(client, run, path: str):
    return client.put(
        url("runs/{id}/artifacts/", id=run.uuid) + path, b"data", content_type="application/octet-stream"
    )


def test_a_file_where_a_folder_must_go_is_a_409(run, contributor_api):
    assert _put(contributor_api, run, "model").status_code == 201
    response = _put(contributor_api, run, "model/weights/x.bin")
    assert response.status_code == 409, response.content
    assert error(response) == {
        "error_code": "RESOURCE_CONFLICT",
        "message": "path: 'model/weights/x.bin' needs a folder 'model', but 'model' is a file",
        "field": "path",
    }
    assert list(Artifact.objects.values_list("path", flat=True)) == ["model"]


def test_a_folder_where_a_file_must_go_is_a_409(run, contributor_api):
    assert _put(contributor_api, run, "model/x.bin").status_code == 201
    response = _put(contributor_api, run, "model")
    assert response.status_code == 409, response.content
    assert error(response) == {
        "error_code": "RESOURCE_CONFLICT",
        "message": f"path: 'model' is a folder of run {run.uuid}'s artifacts, not a file",
        "field": "path",
    }
    assert list(Artifact.objects.values_list("path", flat=True)) == ["model/x.bin"]


def test_a_file_beside_a_folder_of_a_similar_name_is_stored(run, contributor_api):
    assert _put(contributor_api, run, "model/x.bin").status_code == 201
    assert _put(contributor_api, run, "model.bin").status_code == 201
    assert _put(contributor_api, run, "mod").status_code == 201


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
@pytest.mark.parametrize("logged_in", [True, False], ids=["session", "anonymous"])
def test_an_unknown_api_url_answers_a_json_404_for_every_method(contributor, method, logged_in):
    client = Client(enforce_csrf_checks=True)  # no CSRF token, as a careless client sends
    if logged_in:
        client.force_login(contributor)
    response = client.generic(method, "/api/v1/no/such/endpoint", "{}", content_type="application/json")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert error(response) == {
        "error_code": "RESOURCE_DOES_NOT_EXIST",
        "message": "There is no API endpoint at /api/v1/no/such/endpoint.",
        "field": None,
    }
