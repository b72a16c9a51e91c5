"""The real mlflow 3.17 AuthServiceClient (`mlflow.server.auth.client`) against a live server.

mlflow-skinny, which the test environment installs, has no `mlflow.server`: these tests run the
client in the full mlflow package's own interpreter, named by MLFLOW_FULL_PYTHON (CI builds it
with `make mlflow-server`; locally /tmp/mlflow-venv/bin/python). Without it they skip, or fail
when REQUIRE_SERVICES is set.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from accounts.permissions import Level, level_of
from accounts.roles import Role
from accounts.services import assign_role, create_api_token
from audit.models import AuditEvent
from registry import services as registry_services
from tests.conftest import skip_or_fail
from tests.factories import UserFactory
from tracker import services
from tracker.models import DEFAULT_EXPERIMENT_ID, Experiment

SCRIPT = textwrap.dedent(
    """
    import json, sys
    from mlflow.server.auth.client import AuthServiceClient

    client = AuthServiceClient(sys.argv[1])
    experiment_id, model_name = sys.argv[2], sys.argv[3]
    seen = {}
    user = client.create_user("carol", "a long enough passphrase 9")
    seen["created"] = [user.username, user.is_admin]
    seen["got"] = client.get_user("carol").username
    client.grant_user_permission("carol", "experiment", experiment_id, "EDIT")
    client.grant_user_permission("carol", "registered_model", model_name, "MANAGE")
    found = client.get_user_permission("carol", "experiment", experiment_id)
    seen["experiment"] = [found.permission, found.allowed]
    seen["model"] = client.get_user_permission("carol", "registered_model", model_name).permission
    client.revoke_user_permission("carol", "experiment", experiment_id)
    seen["revoked"] = client.get_user_permission("carol", "experiment", experiment_id).permission
    client.update_user_password("carol", "a different passphrase 10")
    client.update_user_admin("carol", True)
    seen["admin"] = client.get_user("carol").is_admin
    try:
        client.grant_user_permission("carol", "experiment", "987654", "READ")
    except Exception as error:
        seen["unknown"] = getattr(error, "error_code", type(error).__name__)
    client.delete_user("carol")
    print(json.dumps(seen))
    """
)


@pytest.fixture
def full_mlflow_python() -> str:
    python = os.environ.get("MLFLOW_FULL_PYTHON", "")
    if not python or not Path(python).exists():
        skip_or_fail(
            "MLFLOW_FULL_PYTHON must name a python with the full mlflow==3.17.2 (make mlflow-server)"
        )
    return python


def test_the_auth_client_manages_users_and_grants(
    live_server, transactional_db, full_mlflow_python, settings
):
    settings.DEFAULT_PERMISSION = "READ"
    Experiment.objects.get_or_create(pk=DEFAULT_EXPERIMENT_ID, defaults={"name": "Default"})
    admin = UserFactory(username="ada")
    assign_role(user=admin, role=Role.ADMIN)
    experiment = services.create_experiment(actor=admin, name="shared")
    model = registry_services.create_registered_model(actor=admin, name="shared-model")
    _, token = create_api_token(user=admin, name="auth-client")
    environment = {
        **os.environ,
        "MLFLOW_TRACKING_TOKEN": token,
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
    }
    environment.pop("MLFLOW_TRACKING_USERNAME", None)
    environment.pop("MLFLOW_TRACKING_PASSWORD", None)
    done = subprocess.run(
        [full_mlflow_python, "-c", SCRIPT, live_server.url, str(experiment.pk), model.name],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen == {
        "created": ["carol", False],
        "got": "carol",
        "experiment": ["EDIT", True],
        "model": "MANAGE",
        "revoked": "READ",  # back to the default
        "admin": True,
        "unknown": "RESOURCE_DOES_NOT_EXIST",
    }
    carol = type(admin).objects.get(username="carol")
    assert not carol.is_active  # deleted: deactivated, so the audit trail still names her
    assert level_of(admin, model) is Level.MANAGE
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {
        "user.created",
        "experiment.permission_set",
        "experiment.permission_deleted",
        "registered_model.permission_set",
        "user.password_changed",
        "user.deactivated",
    } <= actions
