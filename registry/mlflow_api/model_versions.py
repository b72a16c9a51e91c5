"""MLflow endpoints: model_versions."""

from __future__ import annotations

from tracker.mlflow_api.protocol import Endpoint

ENDPOINTS: list[Endpoint] = []
