"""Bad input never gets a 5xx: the mlflow client retries those for minutes.

Every endpoint of the MLflow API is sent messages of the wrong shape — missing fields, wrong
types, NUL characters, huge values, hostile ids — and must answer with a 4xx and MLflow's
error body, whatever the handler does with them.
"""

from __future__ import annotations

import re

import pytest

from registry.mlflow_api.urls import REGISTRY_ENDPOINTS
from tests.factories import ModelVersionFactory, RegisteredModelFactory
from tracker.mlflow_api.ajax import AJAX_ENDPOINTS
from tracker.mlflow_api.server_info import server_info
from tracker.mlflow_api.urls import ARTIFACT_ENDPOINTS, TRACKING_ENDPOINTS

pytestmark = pytest.mark.django_db

# Field names the endpoints read; each hostile message sets all of them to one bad value.
FIELDS = [
    "experiment_id", "experiment_ids", "experiment_name", "name", "new_name", "run_id", "run_uuid",
    "run_ids", "key", "value", "step", "timestamp", "metric_key", "max_results", "page_token",
    "filter", "order_by", "view_type", "run_view_type", "status", "end_time", "start_time",
    "run_name", "tags", "params", "metrics", "datasets", "models", "alias", "version", "stage",
    "stages", "source", "model_id", "description", "archive_existing_versions", "start_step",
    "end_step", "path", "artifact_directory_path", "allow_deleted", "model_type", "source_run_id",
    "artifact_file_path",
]  # fmt: skip
BAD_VALUES = [
    None,
    5,
    -1,
    1e308,
    True,
    "",
    "x\x00y",
    "' OR 1=1 --",
    "../../etc/passwd",
    "9" * 40,
    "a" * 300_000,
    [],
    [5, None, {"a": 1}],
    [{"key": None, "value": 5}],
    {"nested": {"deep": [1]}},
]
PATH_VALUES = ["m-" + "0" * 32, "x\x00y", "%2e%2e", "a" * 2000]


def _concrete(route: str, value: str) -> str:
    return re.sub(r"<(?:\w+:)?\w+>", value, route)


def _endpoints():
    for prefix, table in (
        ("/api/2.0/mlflow/", [*TRACKING_ENDPOINTS, *REGISTRY_ENDPOINTS]),
        ("/api/2.0/mlflow-artifacts/", ARTIFACT_ENDPOINTS),
        ("/api/3.0/mlflow/", server_info),
        ("/ajax-api/2.0/mlflow/", AJAX_ENDPOINTS),
    ):
        for endpoint in table:
            yield pytest.param(prefix, endpoint, id=f"{endpoint.method} {endpoint.route}")


@pytest.mark.parametrize(("prefix", "endpoint"), list(_endpoints()))
def test_hostile_messages_get_a_4xx_never_a_5xx(wire, run, prefix, endpoint):
    routes = (
        [_concrete(endpoint.route, value) for value in PATH_VALUES]
        if "<" in endpoint.route
        else [endpoint.route]
    )
    for route in routes:
        for bad in BAD_VALUES:
            message = dict.fromkeys(FIELDS, bad)
            if endpoint.method == "GET" and isinstance(bad, (list, dict)):
                continue  # a query string cannot carry these
            response = wire.call(endpoint.method, route, message if bad is not None else {}, prefix=prefix)
            if route.startswith("mpu/") and "\x00" not in route:  # a NUL is refused before any view
                # MLflow's own answer, which the client takes as "upload in one PUT" (not retried).
                assert (response.status_code, response.json()["error_code"]) == (501, "NOT_IMPLEMENTED")
                continue
            assert response.status_code < 500, (route, bad, response.content[:300])
            if response.status_code >= 400 and response["Content-Type"] == "application/json":
                body = response.json()
                assert set(body) >= {"error_code", "message"}, body


@pytest.mark.parametrize("body", [b"{", b"[1, 2]", b'"text"', b"\xff\xfe", b'{"a": NaN}', b"null"])
def test_malformed_bodies_are_400(wire, run, body):
    response = wire.client.generic(
        "POST", "/api/2.0/mlflow/runs/log-batch", body, content_type="application/json", headers=wire.headers
    )
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"


ONE_BAD_VALUE = [5, "x\x00y", [5], {"a": 1}, "9" * 40]


@pytest.mark.parametrize(("prefix", "endpoint"), list(_endpoints()))
def test_one_bad_field_in_an_otherwise_valid_message_is_never_a_5xx(wire, run, prefix, endpoint):
    """With every id valid, the handler gets past its lookups, so each field's own parsing is hit."""
    version = ModelVersionFactory(model=RegisteredModelFactory(name="digits"), run=run, version=1)
    valid = {
        "experiment_id": str(run.experiment_id),
        "experiment_ids": [str(run.experiment_id)],
        "run_id": run.uuid,
        "run_ids": [run.uuid],
        "name": version.model.name,
        "version": "1",
        "key": "loss",
        "metric_key": "loss",
        "value": "1",
        "alias": "champion",
        "stage": "Staging",
    }
    route = _concrete(endpoint.route, run.uuid)
    for field in FIELDS:
        for bad in ONE_BAD_VALUE:
            if endpoint.method == "GET" and isinstance(bad, (list, dict)):
                continue
            response = wire.call(endpoint.method, route, {**valid, field: bad}, prefix=prefix)
            if route.startswith("mpu/") and "\x00" not in route:  # a NUL is refused before any view
                assert response.status_code == 501
                continue
            assert response.status_code < 500, (route, field, bad, response.content[:300])
