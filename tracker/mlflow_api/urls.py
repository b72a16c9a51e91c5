"""The tracking side of the MLflow API, as tables of endpoints (see protocol.Endpoint)."""

from . import artifacts, experiments, logged_models, metrics, permissions, runs

TRACKING_ENDPOINTS = [
    *experiments.ENDPOINTS,
    *runs.ENDPOINTS,
    *metrics.ENDPOINTS,
    *logged_models.ENDPOINTS,
    *artifacts.ENDPOINTS,
    *permissions.ENDPOINTS,
]
ARTIFACT_ENDPOINTS = artifacts.ARTIFACT_ENDPOINTS
