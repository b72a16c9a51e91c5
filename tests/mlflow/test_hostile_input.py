"""Hostile input on the MLflow API gets MLflow's INVALID_PARAMETER_VALUE, never a 500 (issue #11 §1).

The mlflow client retries a 5xx for minutes, so a forged page token, a deep body or an
impossible artifact path must be refused at once, with an error that names what was wrong.
"""

from __future__ import annotations

import pytest

from tests.factories import ModelVersionFactory, RegisteredModelFactory
from tests.page_tokens import experiment_sort, forged_token, run_sort
from tracker.models import Artifact
from tracker.services import create_logged_model, start_run

pytestmark = pytest.mark.django_db

ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts/"


OUT_OF_RANGE_TOKENS = [
    '[86400000000000000000, "2026-01-01T00:00:00+00:00", "x"]',
    '["9999-12-31T23:59:59-23:59", "x"]',
    '["9999-12-31T23:59:59-23:59", 1]',
    "[9223372036854775808]",
    "[" + "9" * 400 + "]",
    "[9223372036854775808, 1, 0.5, false]",
    "[1, 1, " + "9" * 400 + ", false]",
]


@pytest.fixture
def mlflow_run(wire, contributor, experiment):
    """A run with a point of `loss` and a logged model, so every search has rows to page."""
    run = start_run(actor=contributor, experiment=experiment, name="r1")
    wire.ok(
        "POST",
        "runs/log-metric",
        {"run_id": run.uuid, "key": "loss", "value": 0.5, "timestamp": 1, "step": 1},
    )
    create_logged_model(actor=contributor, experiment=experiment, name="model", source_run=run)
    ModelVersionFactory(model=RegisteredModelFactory(name="m"), run=run, version=1)
    return run


RUN_ORDERS = [["attributes.duration DESC"], ["metrics.loss DESC"], ["attributes.start_time ASC"], []]
EXPERIMENT_ORDERS = [["creation_time DESC"], []]


def _searches(run):
    """Every paged search: (method, endpoint, message, the signature its tokens start with)."""
    experiment = str(run.experiment_id)
    return [
        *(
            ("POST", "runs/search", {"experiment_ids": [experiment], "order_by": order}, run_sort(order))
            for order in RUN_ORDERS
        ),
        *(
            ("POST", "experiments/search", {"order_by": order}, experiment_sort(order))
            for order in EXPERIMENT_ORDERS
        ),
        ("POST", "logged-models/search", {"experiment_ids": [experiment]}, None),
        ("GET", "metrics/get-history", {"run_id": run.uuid, "metric_key": "loss"}, None),
        ("GET", "registered-models/search", {}, None),
        ("GET", "model-versions/search", {}, None),
    ]


@pytest.mark.parametrize("raw", OUT_OF_RANGE_TOKENS)
def test_every_paged_endpoint_refuses_a_page_token_holding_out_of_range_values(wire, mlflow_run, raw):
    for method, endpoint, message, signature in _searches(mlflow_run):
        text = wire.error(
            method,
            endpoint,
            {**message, "page_token": forged_token(raw, signature=signature)},
            status=400,
            code="INVALID_PARAMETER_VALUE",
        )
        assert text == "page_token: Invalid page token", (endpoint, text)


def test_a_body_nested_past_orjsons_limit_is_a_400_naming_the_body(wire):
    depth = 1_100
    response = wire.client.generic(
        "POST",
        "/api/2.0/mlflow/runs/create",
        '{"tags": ' + "[" * depth + "]" * depth + "}",
        content_type="application/json",
        headers=wire.headers,
    )
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert response.json()["message"].startswith("body: Malformed JSON in the request body")


def _put(wire, path: str):
    return wire.client.generic(
        "PUT", ARTIFACTS + path, b"data", content_type="application/octet-stream", headers=wire.headers
    )


def _root(run) -> str:
    return run.artifact_uri.removeprefix("mlflow-artifacts:/")


def test_an_artifact_name_longer_than_a_filesystem_allows_is_a_400_naming_the_path(wire, mlflow_run):
    response = _put(wire, f"{_root(mlflow_run)}/{'x' * 300}")
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert response.json()["message"].startswith("Invalid path: ")
    assert not Artifact.objects.exists()


def test_a_file_where_a_folder_must_go_is_invalid(wire, mlflow_run):
    assert _put(wire, f"{_root(mlflow_run)}/model").status_code == 200
    response = _put(wire, f"{_root(mlflow_run)}/model/MLmodel")
    assert response.status_code == 400
    assert response.json() == {
        "error_code": "INVALID_PARAMETER_VALUE",
        "message": "path: 'model/MLmodel' needs a folder 'model', but 'model' is a file",
    }


def test_a_folder_where_a_file_must_go_is_invalid(wire, mlflow_run):
    assert _put(wire, f"{_root(mlflow_run)}/model/MLmodel").status_code == 200
    response = _put(wire, f"{_root(mlflow_run)}/model")
    assert response.status_code == 400
    assert response.json() == {
        "error_code": "INVALID_PARAMETER_VALUE",
        "message": f"path: 'model' is a folder of run {mlflow_run.uuid}'s artifacts, not a file",
    }
    assert list(Artifact.objects.values_list("path", flat=True)) == ["model/MLmodel"]
