"""MLflow endpoints: artifacts."""

from __future__ import annotations

from .protocol import Endpoint

ENDPOINTS: list[Endpoint] = []
# Served under /api/2.0/mlflow-artifacts/ (ENDPOINTS above are under /api/2.0/mlflow/).
ARTIFACT_ENDPOINTS: list[Endpoint] = []
