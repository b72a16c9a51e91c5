"""Fixtures for wire-level tests of the MLflow API: requests shaped as the mlflow client sends them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from accounts.services import create_api_token


class MlflowWire:
    """Sends MLflow-shaped requests as one user: GET as query parameters, other methods as JSON."""

    def __init__(self, token: str | None) -> None:
        self.client = Client(enforce_csrf_checks=True)  # as real clients: no CSRF cookie, ever
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def call(
        self,
        method: str,
        endpoint: str,
        message: dict[str, Any] | None = None,
        *,
        prefix: str = "/api/2.0/mlflow/",
    ):
        url = prefix + endpoint
        message = message or {}
        if method == "GET":
            return self.client.get(url, message, headers=self.headers)
        return self.client.generic(
            method, url, json.dumps(message), content_type="application/json", headers=self.headers
        )

    def ok(self, method: str, endpoint: str, message: dict[str, Any] | None = None, **kwargs: Any) -> dict:
        """The JSON of a call that must succeed."""
        response = self.call(method, endpoint, message, **kwargs)
        assert response.status_code == 200, (response.status_code, response.content[:500])
        return response.json() if response.content else {}

    def error(
        self,
        method: str,
        endpoint: str,
        message: dict[str, Any] | None = None,
        *,
        status: int,
        code: str,
        **kwargs: Any,
    ) -> str:
        """The message of a call that must fail with MLflow's `status` and `error_code`."""
        response = self.call(method, endpoint, message, **kwargs)
        body = response.json()
        assert (response.status_code, body.get("error_code")) == (status, code), (response.status_code, body)
        assert isinstance(body.get("message"), str) and body["message"]
        return body["message"]


@pytest.fixture
def mlflow_wire_for(db):
    """`mlflow_wire_for(user)` → a MlflowWire sending that user's fresh API token."""

    def make(user) -> MlflowWire:
        _, raw = create_api_token(user=user, name="mlflow-test")
        return MlflowWire(raw)

    return make


@pytest.fixture
def wire(mlflow_wire_for, contributor) -> MlflowWire:
    """A contributor's client: may log runs and register models."""
    return mlflow_wire_for(contributor)


@pytest.fixture
def viewer_wire(mlflow_wire_for, viewer) -> MlflowWire:
    return mlflow_wire_for(viewer)
