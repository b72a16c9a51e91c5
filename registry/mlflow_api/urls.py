"""The registry side of the MLflow API, as a table of endpoints (see tracker.mlflow_api.protocol)."""

from . import model_versions, registered_models

REGISTRY_ENDPOINTS = [*registered_models.ENDPOINTS, *model_versions.ENDPOINTS]
