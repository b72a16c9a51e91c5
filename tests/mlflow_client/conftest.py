"""The real mlflow client (mlflow-skinny, as pinned in requirements-dev.txt) against a live server.

pytest-django's live_server serves the app on a free port in this process, on the test database,
so a test can drive the client and then look at what was stored. The client reads its target and
credentials from the environment, exactly as a training script does.
"""

from __future__ import annotations

import gc
import os

import pytest
import requests

# Set before the client is first imported: no telemetry thread, no background logging queue, and
# no retries, so a server error fails the test at once instead of being retried for minutes.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = "60"

import mlflow
from mlflow.tracking import MlflowClient

from accounts.services import create_api_token
from tracker.models import DEFAULT_EXPERIMENT_ID, Experiment


@pytest.fixture
def tracking_uri(live_server, transactional_db) -> str:
    # A live-server test ends with a flush, which also empties what migrations wrote: put back the
    # Default experiment ("0") that start_run() without an experiment logs to.
    Experiment.objects.get_or_create(pk=DEFAULT_EXPERIMENT_ID, defaults={"name": "Default"})
    return live_server.url


@pytest.fixture
def mlflow_as(tracking_uri, monkeypatch):
    """`mlflow_as(user)` points the fluent API and a returned MlflowClient at the live server,
    authenticated with a fresh API token of `user` (MLFLOW_TRACKING_TOKEN)."""

    def configure(user) -> MlflowClient:
        _, raw = create_api_token(user=user, name="mlflow-client")
        monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", raw)
        monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
        monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
        # set_experiment() remembers its experiment in the environment; each test starts afresh.
        monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
        monkeypatch.setattr(mlflow.tracking.fluent, "_active_experiment_id", None)
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_registry_uri(tracking_uri)
        return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    yield configure
    while mlflow.active_run() is not None:
        mlflow.end_run()
    _close_client_connections()


def _close_client_connections() -> None:
    """Close the client's pooled keep-alive connections (it caches its requests sessions), so
    the live server's request threads end now, not at interpreter exit after the test database
    is gone."""
    for candidate in gc.get_objects():
        try:
            is_session = isinstance(candidate, requests.Session)
        except ReferenceError:  # a dead weakref.proxy (left by an earlier test) cannot be asked
            continue
        if is_session:
            candidate.close()


@pytest.fixture
def client(mlflow_as, contributor) -> MlflowClient:
    return mlflow_as(contributor)
