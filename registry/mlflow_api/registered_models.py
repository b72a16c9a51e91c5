"""MLflow endpoints: registered_models."""

from __future__ import annotations

from tracker.mlflow_api.protocol import Endpoint

ENDPOINTS: list[Endpoint] = []
