"""The protocol layer: authentication, message parsing, error shape, unknown endpoints."""

from __future__ import annotations

import base64

import pytest
from django.core.exceptions import SuspiciousFileOperation
from django.test import Client

from tests.mlflow.conftest import MlflowWire
from tracker import selectors

pytestmark = pytest.mark.django_db


def test_server_info_needs_credentials_and_says_no_multipart(wire):
    assert MlflowWire(None).call("GET", "server-info", prefix="/api/3.0/mlflow/").status_code == 401
    info = wire.ok("GET", "server-info", prefix="/api/3.0/mlflow/")
    assert info["multipart_uploads_enabled"] is False
    assert info["multipart_downloads_enabled"] is False


def test_missing_credentials_is_401_with_an_mlflow_error_body():
    message = MlflowWire(None).error(
        "GET", "server-info", prefix="/api/3.0/mlflow/", status=401, code="UNAUTHENTICATED"
    )
    assert "MLFLOW_TRACKING_TOKEN" in message


def test_wrong_token_is_401():
    MlflowWire("llt_not-a-token").error(
        "GET", "server-info", prefix="/api/3.0/mlflow/", status=401, code="UNAUTHENTICATED"
    )


def _basic(username: str, password: str) -> dict[str, str]:
    raw = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def test_basic_auth_with_username_and_password(contributor):
    contributor.set_password("correct horse")
    contributor.save()
    client = Client()
    url = "/api/3.0/mlflow/server-info"
    assert client.get(url, headers=_basic(contributor.username, "correct horse")).status_code == 200
    # Remembered briefly, but a changed password is checked again.
    assert client.get(url, headers=_basic(contributor.username, "correct horse")).status_code == 200
    contributor.set_password("new secret")
    contributor.save()
    assert client.get(url, headers=_basic(contributor.username, "correct horse")).status_code == 401
    assert client.get(url, headers=_basic(contributor.username, "new secret")).status_code == 200


def test_basic_auth_accepts_an_api_token_as_password_for_its_own_user(contributor, viewer):
    from accounts.services import create_api_token

    _, raw = create_api_token(user=contributor)
    client = Client()
    url = "/api/3.0/mlflow/server-info"
    assert client.get(url, headers=_basic(contributor.username, raw)).status_code == 200
    assert client.get(url, headers=_basic(viewer.username, raw)).status_code == 401


@pytest.mark.parametrize(
    "header", ["Basic !!!notbase64", "Basic " + base64.b64encode(b"nocolon").decode(), "Digest abc", "Bearer"]
)
def test_malformed_authorization_is_401(header):
    response = Client().get("/api/3.0/mlflow/server-info", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json()["error_code"] == "UNAUTHENTICATED"


def test_user_without_a_role_is_403(mlflow_wire_for, outsider):
    mlflow_wire_for(outsider).error(
        "GET", "server-info", prefix="/api/3.0/mlflow/", status=403, code="PERMISSION_DENIED"
    )


def test_unknown_endpoint_is_404_endpoint_not_found(wire):
    wire.error("POST", "no-such/thing", {}, status=404, code="ENDPOINT_NOT_FOUND")
    wire.error("GET", "x", prefix="/api/2.0/mlflow-artifacts/", status=404, code="ENDPOINT_NOT_FOUND")


@pytest.mark.parametrize(
    ("method", "path", "area"),
    [
        ("POST", "/api/3.0/mlflow/traces", "traces and spans"),
        ("GET", "/api/3.0/mlflow/traces/tr-1/info", "traces and spans"),
        ("POST", "/api/2.0/mlflow/traces/search", "traces and spans"),
        ("POST", "/v1/traces", "traces and spans"),
        ("GET", "/ajax-api/2.0/mlflow/get-trace-artifact", "traces and spans"),
        ("POST", "/api/2.0/mlflow/registered-models/create-prompt", "prompt registry"),
        ("GET", "/api/3.0/mlflow/scorers/list", "scorers"),
        ("POST", "/api/3.0/mlflow/datasets/create", "evaluation datasets"),
        ("POST", "/api/3.0/mlflow/traces/tr-1/assessments", "traces and spans"),
        ("GET", "/api/3.0/mlflow/workspaces", "workspaces"),
        ("POST", "/graphql", "GraphQL API"),
        ("POST", "/ajax-api/graphql", "GraphQL API"),
        ("GET", "/api/2.0/gateway/routes/", "AI gateway"),
        ("POST", "/gateway/chat/mlflow/invocations", "AI gateway"),
        ("GET", "/api/2.0/endpoints/", "AI gateway"),
        (
            "POST",
            "/api/2.0/mlflow/webhooks",
            "webhooks API (Lab Ledger's own webhooks are at /api/v1/webhooks)",
        ),
    ],
)
def test_mlflow_3_areas_outside_lab_ledger_answer_endpoint_not_found_naming_the_endpoint(
    wire, method, path, area
):
    response = wire.call(method, path, {}, prefix="")
    assert (response.status_code, response["Content-Type"]) == (404, "application/json")
    assert response.json() == {
        "error_code": "ENDPOINT_NOT_FOUND",
        "message": f"Lab Ledger does not implement {method} {path}. It belongs to MLflow's {area}, "
        "which Lab Ledger does not serve (see docs/mlflow.md).",
    }


def test_an_unknown_path_that_is_no_mlflow_area_is_named_plainly(wire):
    response = wire.call("GET", "/ajax-api/2.0/mlflow/no-such/thing", prefix="")
    assert response.json() == {
        "error_code": "ENDPOINT_NOT_FOUND",
        "message": "Lab Ledger does not implement GET /ajax-api/2.0/mlflow/no-such/thing.",
    }


def test_wrong_method_is_405_naming_the_allowed_ones(wire):
    response = wire.call("DELETE", "server-info", prefix="/api/3.0/mlflow/")
    assert response.status_code == 405
    assert response["Allow"] == "GET"
    assert response.json()["error_code"] == "ENDPOINT_NOT_FOUND"


def test_a_nul_character_in_an_id_is_a_400_not_a_server_error(wire):
    message = wire.error(
        "GET", "runs/get", {"run_id": "abc\x00def"}, status=400, code="INVALID_PARAMETER_VALUE"
    )
    assert "NUL" in message


def test_a_request_django_refuses_as_suspicious_gets_mlflow_s_error_envelope(wire, monkeypatch):
    def refuse(**_):  # as storage does for a path leaving its folder
        raise SuspiciousFileOperation("The joined path (/srv/artifacts/..) is outside of the base path")

    monkeypatch.setattr(selectors, "search_experiments", refuse)

    response = wire.call("POST", "experiments/search", {"max_results": 5})

    assert response.status_code == 400
    assert response.json() == {
        "error_code": "INVALID_PARAMETER_VALUE",
        "message": "the request was refused as unsafe (SuspiciousFileOperation)",
    }
