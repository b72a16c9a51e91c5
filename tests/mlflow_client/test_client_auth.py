"""Credentials as the mlflow client sends them: token (Bearer) or username/password (Basic)."""

from __future__ import annotations

import mlflow
import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from tracker.models import Run

pytestmark = pytest.mark.django_db(transaction=True)


def test_username_and_password_work(tracking_uri, contributor, monkeypatch):
    contributor.set_password("s3cret-pass")
    contributor.save()
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", contributor.username)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "s3cret-pass")
    client = MlflowClient(tracking_uri=tracking_uri)
    run = client.create_run(client.create_experiment("basic-auth"))
    assert Run.objects.get(uuid=run.info.run_id).user == contributor


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"MLFLOW_TRACKING_TOKEN": "llt_forged-token"},
        {"MLFLOW_TRACKING_USERNAME": "carl-contributor", "MLFLOW_TRACKING_PASSWORD": "wrong"},
    ],
    ids=["no credentials", "unknown token", "wrong password"],
)
def test_bad_credentials_are_unauthenticated(tracking_uri, contributor, monkeypatch, env):
    for name in ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(MlflowException) as error:
        MlflowClient(tracking_uri=tracking_uri).search_experiments()
    assert error.value.error_code == "UNAUTHENTICATED"


def test_a_viewer_may_read_but_not_write(mlflow_as, client, viewer):
    experiment_id = client.create_experiment("read-only")
    viewer_client = mlflow_as(viewer)
    assert viewer_client.get_experiment(experiment_id).name == "read-only"
    with pytest.raises(MlflowException) as error:
        viewer_client.create_run(experiment_id)
    assert error.value.error_code == "PERMISSION_DENIED"
    with pytest.raises(MlflowException):
        mlflow.set_experiment("viewer-cannot-create")
    assert not Run.objects.filter(experiment_id=int(experiment_id)).exists()
