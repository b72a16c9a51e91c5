"""The registry side of the MLflow API, as a table of endpoints (see tracker.mlflow_api.protocol)."""

from . import model_versions, permissions, registered_models

REGISTRY_ENDPOINTS = [*registered_models.ENDPOINTS, *model_versions.ENDPOINTS, *permissions.ENDPOINTS]
# MLflow 3's unified per-user grants, under /api/3.0/mlflow/.
V3_PERMISSION_ENDPOINTS = permissions.V3_ENDPOINTS
