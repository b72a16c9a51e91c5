"""Every write endpoint of the MLflow-compatible API, walked as owner, editor, reader and stranger.

The endpoints come from the tables the URL conf mounts (tracking, registry, artifacts, the UI's
ajax ones, MLflow 3's grants): one without a case here fails `test_every_write_endpoint_has_a_case`.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from accounts.permissions import Level
from registry.mlflow_api.urls import REGISTRY_ENDPOINTS, V3_PERMISSION_ENDPOINTS
from tracker import services
from tracker.mlflow_api.ajax import AJAX_ENDPOINTS
from tracker.mlflow_api.urls import ARTIFACT_ENDPOINTS, TRACKING_ENDPOINTS

from .conftest import PERSONAS, World, assert_obeys, materialised

PREFIXES = {
    "tracking": "/api/2.0/mlflow/",
    "artifacts": "/api/2.0/mlflow-artifacts/",
    "ajax": "/ajax-api/2.0/mlflow/",
    "v3": "/api/3.0/mlflow/",
}
TABLES = {
    "tracking": [*TRACKING_ENDPOINTS, *REGISTRY_ENDPOINTS],
    "artifacts": ARTIFACT_ENDPOINTS,
    "ajax": AJAX_ENDPOINTS,
    "v3": V3_PERMISSION_ENDPOINTS,
}
# Searches are POSTs that only read; their filtering is tested in test_lists.py.
READS = {
    ("tracking", "POST", "experiments/search"),
    ("tracking", "POST", "runs/search"),
    ("tracking", "POST", "logged-models/search"),
    ("tracking", "POST", "registered-models/get-latest-versions"),
    ("ajax", "POST", "experiments/search-datasets"),
    # The client's multipart probe: refused for everyone alike, before any owner is looked up.
    ("artifacts", "POST", "mpu/create/<path:artifact_path>"),
    ("artifacts", "POST", "mpu/complete/<path:artifact_path>"),
    ("artifacts", "POST", "mpu/abort/<path:artifact_path>"),
}


def mlflow_write_endpoints() -> set[tuple[str, str, str]]:
    return {
        (area, endpoint.method, endpoint.route)
        for area, table in TABLES.items()
        for endpoint in table
        if endpoint.method != "GET" and (area, endpoint.method, endpoint.route) not in READS
    }


E = lambda w: str(w.experiment.pk)  # noqa: E731
R = lambda w: w.run.uuid  # noqa: E731
M = lambda w: w.logged_model.model_id  # noqa: E731
N = lambda w: w.model.name  # noqa: E731
# (area, method, route) → (path, message, level needed; None: no object's permission decides)
Case = tuple[Callable[[World], str], Callable[[World], Any], Level | None]
ROUTE = lambda route: lambda w: route  # noqa: E731
EMPTY = lambda w: {}  # noqa: E731
CASES: dict[tuple[str, str, str], Case] = {
    ("tracking", "POST", "experiments/create"): (ROUTE("experiments/create"), lambda w: {"name": "n"}, None),
    ("tracking", "POST", "experiments/update"): (
        ROUTE("experiments/update"),
        lambda w: {"experiment_id": E(w), "new_name": "renamed"},
        Level.EDIT,
    ),
    ("tracking", "POST", "experiments/delete"): (
        ROUTE("experiments/delete"),
        lambda w: {"experiment_id": E(w)},
        Level.MANAGE,
    ),
    ("tracking", "POST", "experiments/restore"): (
        ROUTE("experiments/restore"),
        lambda w: {"experiment_id": E(w)},
        Level.MANAGE,
    ),
    ("tracking", "POST", "experiments/set-experiment-tag"): (
        ROUTE("experiments/set-experiment-tag"),
        lambda w: {"experiment_id": E(w), "key": "k", "value": "v"},
        Level.EDIT,
    ),
    ("tracking", "POST", "experiments/delete-experiment-tag"): (
        ROUTE("experiments/delete-experiment-tag"),
        lambda w: {"experiment_id": E(w), "key": "team"},
        Level.EDIT,
    ),
    ("tracking", "POST", "runs/create"): (
        ROUTE("runs/create"),
        lambda w: {"experiment_id": E(w)},
        Level.EDIT,
    ),
    ("tracking", "POST", "runs/update"): (
        ROUTE("runs/update"),
        lambda w: {"run_id": R(w), "status": "FINISHED"},
        Level.EDIT,
    ),
    ("tracking", "POST", "runs/delete"): (ROUTE("runs/delete"), lambda w: {"run_id": R(w)}, Level.MANAGE),
    ("tracking", "POST", "runs/restore"): (ROUTE("runs/restore"), lambda w: {"run_id": R(w)}, Level.MANAGE),
    ("tracking", "POST", "runs/log-metric"): (
        ROUTE("runs/log-metric"),
        lambda w: {"run_id": R(w), "key": "a", "value": 1, "timestamp": 1, "step": 3},
        Level.EDIT,
    ),
    ("tracking", "POST", "runs/log-parameter"): (
        ROUTE("runs/log-parameter"),
        lambda w: {"run_id": R(w), "key": "p", "value": "1"},
        Level.EDIT,
    ),
    ("tracking", "POST", "runs/log-batch"): (
        ROUTE("runs/log-batch"),
        lambda w: {"run_id": R(w), "tags": [{"key": "t", "value": "v"}]},
        Level.EDIT,
    ),
    ("tracking", "POST", "runs/set-tag"): (
        ROUTE("runs/set-tag"),
        lambda w: {"run_id": R(w), "key": "t", "value": "v"},
        Level.EDIT,
    ),
    ("tracking", "POST", "runs/delete-tag"): (
        ROUTE("runs/delete-tag"),
        lambda w: {"run_id": R(w), "key": "team"},
        Level.EDIT,
    ),
    ("tracking", "POST", "runs/log-inputs"): (
        ROUTE("runs/log-inputs"),
        lambda w: {
            "run_id": R(w),
            "datasets": [{"dataset": {"name": "d", "digest": "x", "source_type": "local", "source": "{}"}}],
        },
        Level.EDIT,
    ),
    ("tracking", "POST", "runs/outputs"): (
        ROUTE("runs/outputs"),
        lambda w: {"run_id": R(w), "models": [{"model_id": M(w), "step": 1}]},
        Level.EDIT,
    ),
    ("tracking", "POST", "logged-models"): (
        ROUTE("logged-models"),
        lambda w: {"experiment_id": E(w), "name": "lm"},
        Level.EDIT,
    ),
    ("tracking", "PATCH", "logged-models/<str:model_id>"): (
        lambda w: f"logged-models/{M(w)}",
        lambda w: {"status": "LOGGED_MODEL_READY"},
        Level.EDIT,
    ),
    ("tracking", "DELETE", "logged-models/<str:model_id>"): (
        lambda w: f"logged-models/{M(w)}",
        lambda w: {},
        Level.MANAGE,
    ),
    ("tracking", "PATCH", "logged-models/<str:model_id>/tags"): (
        lambda w: f"logged-models/{M(w)}/tags",
        lambda w: {"tags": [{"key": "k", "value": "v"}]},
        Level.EDIT,
    ),
    ("tracking", "DELETE", "logged-models/<str:model_id>/tags/<path:tag_key>"): (
        lambda w: f"logged-models/{M(w)}/tags/team",
        lambda w: {},
        Level.EDIT,
    ),
    ("tracking", "POST", "logged-models/<str:model_id>/params"): (
        lambda w: f"logged-models/{M(w)}/params",
        lambda w: {"params": [{"key": "k", "value": "v"}]},
        Level.EDIT,
    ),
    ("tracking", "POST", "experiments/permissions/create"): (
        ROUTE("experiments/permissions/create"),
        lambda w: {"experiment_id": E(w), "username": "stranger-user", "permission": "READ"},
        Level.MANAGE,
    ),
    ("tracking", "PATCH", "experiments/permissions/update"): (
        ROUTE("experiments/permissions/update"),
        lambda w: {"experiment_id": E(w), "username": "reader-user", "permission": "EDIT"},
        Level.MANAGE,
    ),
    ("tracking", "DELETE", "experiments/permissions/delete"): (
        ROUTE("experiments/permissions/delete"),
        lambda w: {"experiment_id": E(w), "username": "reader-user"},
        Level.MANAGE,
    ),
    ("tracking", "POST", "registered-models/create"): (
        ROUTE("registered-models/create"),
        lambda w: {"name": "other"},
        None,
    ),
    ("tracking", "PATCH", "registered-models/update"): (
        ROUTE("registered-models/update"),
        lambda w: {"name": N(w), "description": "d"},
        Level.EDIT,
    ),
    ("tracking", "POST", "registered-models/rename"): (
        ROUTE("registered-models/rename"),
        lambda w: {"name": N(w), "new_name": "renamed"},
        Level.EDIT,
    ),
    ("tracking", "DELETE", "registered-models/delete"): (
        ROUTE("registered-models/delete"),
        lambda w: {"name": N(w)},
        Level.MANAGE,
    ),
    ("tracking", "POST", "registered-models/set-tag"): (
        ROUTE("registered-models/set-tag"),
        lambda w: {"name": N(w), "key": "k", "value": "v"},
        Level.EDIT,
    ),
    ("tracking", "DELETE", "registered-models/delete-tag"): (
        ROUTE("registered-models/delete-tag"),
        lambda w: {"name": N(w), "key": "team"},
        Level.EDIT,
    ),
    ("tracking", "POST", "registered-models/alias"): (
        ROUTE("registered-models/alias"),
        lambda w: {"name": N(w), "alias": "next", "version": "1"},
        Level.EDIT,
    ),
    ("tracking", "DELETE", "registered-models/alias"): (
        ROUTE("registered-models/alias"),
        lambda w: {"name": N(w), "alias": "candidate"},
        Level.EDIT,
    ),
    ("tracking", "POST", "model-versions/create"): (
        ROUTE("model-versions/create"),
        lambda w: {"name": N(w), "source": f"runs:/{R(w)}/model", "run_id": R(w)},
        Level.EDIT,
    ),
    ("tracking", "PATCH", "model-versions/update"): (
        ROUTE("model-versions/update"),
        lambda w: {"name": N(w), "version": "1", "description": "d"},
        Level.EDIT,
    ),
    ("tracking", "DELETE", "model-versions/delete"): (
        ROUTE("model-versions/delete"),
        lambda w: {"name": N(w), "version": "1"},
        Level.MANAGE,
    ),
    ("tracking", "POST", "model-versions/set-tag"): (
        ROUTE("model-versions/set-tag"),
        lambda w: {"name": N(w), "version": "1", "key": "k", "value": "v"},
        Level.EDIT,
    ),
    ("tracking", "DELETE", "model-versions/delete-tag"): (
        ROUTE("model-versions/delete-tag"),
        lambda w: {"name": N(w), "version": "1", "key": "team"},
        Level.EDIT,
    ),
    ("tracking", "POST", "model-versions/transition-stage"): (
        ROUTE("model-versions/transition-stage"),
        lambda w: {"name": N(w), "version": "1", "stage": "Staging", "archive_existing_versions": False},
        Level.EDIT,
    ),
    ("tracking", "POST", "registered-models/permissions/create"): (
        ROUTE("registered-models/permissions/create"),
        lambda w: {"name": N(w), "username": "stranger-user", "permission": "READ"},
        Level.MANAGE,
    ),
    ("tracking", "PATCH", "registered-models/permissions/update"): (
        ROUTE("registered-models/permissions/update"),
        lambda w: {"name": N(w), "username": "reader-user", "permission": "EDIT"},
        Level.MANAGE,
    ),
    ("tracking", "DELETE", "registered-models/permissions/delete"): (
        ROUTE("registered-models/permissions/delete"),
        lambda w: {"name": N(w), "username": "reader-user"},
        Level.MANAGE,
    ),
    # Users are an admin's business (or one's own password): no object's permission decides.
    ("tracking", "POST", "users/create"): (
        ROUTE("users/create"),
        lambda w: {"username": "newcomer", "password": "a long passphrase 42"},
        None,
    ),
    ("tracking", "PATCH", "users/update-password"): (
        ROUTE("users/update-password"),
        lambda w: {"username": "someone-else", "password": "another long phrase 7"},
        None,
    ),
    ("tracking", "PATCH", "users/update-admin"): (
        ROUTE("users/update-admin"),
        lambda w: {"username": "reader-user", "is_admin": True},
        None,
    ),
    ("tracking", "DELETE", "users/delete"): (
        ROUTE("users/delete"),
        lambda w: {"username": "reader-user"},
        None,
    ),
    ("artifacts", "PUT", "artifacts/<path:artifact_path>"): (
        lambda w: f"artifacts/{E(w)}/{R(w)}/artifacts/new.txt",
        lambda w: b"data",
        Level.EDIT,
    ),
    ("artifacts", "DELETE", "artifacts/<path:artifact_path>"): (
        lambda w: f"artifacts/{E(w)}/{R(w)}/artifacts/notes/readme.txt",
        lambda w: {},
        Level.MANAGE,
    ),
    ("ajax", "POST", "upload-artifact"): (
        lambda w: f"upload-artifact?run_uuid={R(w)}&path=ui.txt",
        lambda w: b"data",
        Level.EDIT,
    ),
    ("v3", "POST", "users/permissions/grant"): (
        ROUTE("users/permissions/grant"),
        lambda w: {
            "username": "stranger-user",
            "resource_type": "experiment",
            "resource_id": E(w),
            "permission": "READ",
        },
        Level.MANAGE,
    ),
    ("v3", "POST", "users/permissions/revoke"): (
        ROUTE("users/permissions/revoke"),
        lambda w: {"username": "reader-user", "resource_type": "registered_model", "resource_id": N(w)},
        Level.MANAGE,
    ),
}


def test_every_write_endpoint_has_a_case():
    assert mlflow_write_endpoints() == set(CASES)


def _send(world: World, persona: str, key: tuple[str, str, str]) -> Any:
    area, method, _ = key
    path, message, _ = CASES[key]
    url = PREFIXES[area] + path(world)
    body = message(world)
    headers = {"Authorization": f"Bearer {world.tokens[persona]}"}
    client = Client(enforce_csrf_checks=True)
    if isinstance(body, bytes):
        return client.generic(method, url, body, content_type="application/octet-stream", headers=headers)
    return client.generic(method, url, json.dumps(body), content_type="application/json", headers=headers)


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("key", sorted(CASES), ids=lambda key: f"{key[0]}-{key[1]}-{key[2]}")
def test_write_endpoint_obeys_the_permission(world, persona, key):
    assert_obeys(persona, CASES[key][2], lambda who: _send(world, who, key))


def test_the_classic_permission_calls_answer_as_mlflow_does(world):
    def call(method: str, endpoint: str, message: dict, persona: str = "owner") -> Any:
        headers = {"Authorization": f"Bearer {world.tokens[persona]}"}
        url = PREFIXES["tracking"] + endpoint
        if method == "GET":
            return Client().get(url, message, headers=headers)
        return Client().generic(
            method, url, json.dumps(message), content_type="application/json", headers=headers
        )

    experiment_id, stranger = str(world.experiment.pk), world.user("stranger")
    created = call(
        "POST",
        "experiments/permissions/create",
        {"experiment_id": experiment_id, "username": "stranger-user", "permission": "READ"},
    )
    shown = {"experiment_id": experiment_id, "user_id": stranger.pk, "permission": "READ"}
    assert created.json() == {"experiment_permission": shown}
    got = call(
        "GET", "experiments/permissions/get", {"experiment_id": experiment_id, "username": "stranger-user"}
    )
    assert got.json() == {"experiment_permission": shown}
    again = call(
        "POST",
        "experiments/permissions/create",
        {"experiment_id": experiment_id, "username": "stranger-user", "permission": "EDIT"},
    )
    assert (again.status_code, again.json()["error_code"]) == (
        400,
        "RESOURCE_ALREADY_EXISTS",
    )  # MLflow answers 400 for it
    model = call(
        "GET", "registered-models/permissions/get", {"name": world.model.name, "username": "editor-user"}
    )
    assert model.json()["registered_model_permission"]["permission"] == "EDIT"
    bad = call(
        "PATCH",
        "registered-models/permissions/update",
        {"name": world.model.name, "username": "editor-user", "permission": "OWNER"},
    )
    assert (bad.status_code, bad.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    assert "permission" in bad.json()["message"]
    me = call("GET", "users/get", {"username": "reader-user"}, persona="reader").json()["user"]
    assert me["username"] == "reader-user" and me["is_admin"] is False
    assert me["experiment_permissions"] == [
        {"experiment_id": experiment_id, "user_id": world.user("reader").pk, "permission": "READ"}
    ]
    assert call("GET", "users/get", {"username": "owner-user"}, persona="reader").status_code == 403


# Reads ----------------------------------------------------------------------------------------


def mlflow_read_endpoints() -> set[tuple[str, str, str]]:
    return {
        (area, endpoint.method, endpoint.route)
        for area, table in TABLES.items()
        for endpoint in table
        if endpoint.method == "GET" or (area, endpoint.method, endpoint.route) in READS
    }


def _model_file(world: World) -> None:
    services.store_artifact(
        actor=world.user("owner"), owner=world.logged_model, path="MLmodel", content=io.BytesIO(b"m")
    )


# (area, method, route) → (path, query or body, what the world needs first): every read that
# opens one object (or names several runs or experiments), which needs READ on each.
ReadCase = tuple[Callable[[World], str], Callable[[World], dict], Callable[[World], None] | None]
RUN_FILES = lambda w: f"{E(w)}/{R(w)}/artifacts"  # noqa: E731
READ_CASES: dict[tuple[str, str, str], ReadCase] = {
    ("tracking", "GET", "experiments/get"): (
        ROUTE("experiments/get"),
        lambda w: {"experiment_id": E(w)},
        None,
    ),
    ("tracking", "GET", "experiments/get-by-name"): (
        ROUTE("experiments/get-by-name"),
        lambda w: {"experiment_name": w.experiment.name},
        None,
    ),
    ("tracking", "GET", "experiments/permissions/get"): (
        ROUTE("experiments/permissions/get"),
        lambda w: {"experiment_id": E(w), "username": "reader-user"},
        None,
    ),
    ("tracking", "GET", "runs/get"): (ROUTE("runs/get"), lambda w: {"run_id": R(w)}, None),
    ("tracking", "GET", "metrics/get-history"): (
        ROUTE("metrics/get-history"),
        lambda w: {"run_id": R(w), "metric_key": "acc"},
        None,
    ),
    ("tracking", "GET", "metrics/get-history-bulk-interval"): (
        ROUTE("metrics/get-history-bulk-interval"),
        lambda w: {"run_ids": R(w), "metric_key": "acc"},
        None,
    ),
    ("tracking", "GET", "logged-models/<str:model_id>"): (lambda w: f"logged-models/{M(w)}", EMPTY, None),
    ("tracking", "GET", "logged-models/<str:model_id>/artifacts/directories"): (
        lambda w: f"logged-models/{M(w)}/artifacts/directories",
        EMPTY,
        None,
    ),
    ("tracking", "GET", "artifacts/list"): (ROUTE("artifacts/list"), lambda w: {"run_id": R(w)}, None),
    ("tracking", "GET", "registered-models/get"): (
        ROUTE("registered-models/get"),
        lambda w: {"name": N(w)},
        None,
    ),
    ("tracking", "GET", "registered-models/alias"): (
        ROUTE("registered-models/alias"),
        lambda w: {"name": N(w), "alias": "candidate"},
        None,
    ),
    ("tracking", "GET", "registered-models/get-latest-versions"): (
        ROUTE("registered-models/get-latest-versions"),
        lambda w: {"name": N(w)},
        None,
    ),
    ("tracking", "POST", "registered-models/get-latest-versions"): (
        ROUTE("registered-models/get-latest-versions"),
        lambda w: {"name": N(w)},
        None,
    ),
    ("tracking", "GET", "registered-models/permissions/get"): (
        ROUTE("registered-models/permissions/get"),
        lambda w: {"name": N(w), "username": "reader-user"},
        None,
    ),
    ("tracking", "GET", "model-versions/get"): (
        ROUTE("model-versions/get"),
        lambda w: {"name": N(w), "version": "1"},
        None,
    ),
    ("tracking", "GET", "model-versions/get-download-uri"): (
        ROUTE("model-versions/get-download-uri"),
        lambda w: {"name": N(w), "version": "1"},
        None,
    ),
    ("artifacts", "GET", "artifacts"): (ROUTE("artifacts"), lambda w: {"path": RUN_FILES(w)}, None),
    ("artifacts", "GET", "artifacts/<path:artifact_path>"): (
        lambda w: f"artifacts/{RUN_FILES(w)}/notes/readme.txt",
        EMPTY,
        None,
    ),
    ("ajax", "GET", "metrics/get-history-bulk"): (
        ROUTE("metrics/get-history-bulk"),
        lambda w: {"run_id": R(w), "metric_key": "acc"},
        None,
    ),
    ("ajax", "POST", "experiments/search-datasets"): (
        ROUTE("experiments/search-datasets"),
        lambda w: {"experiment_ids": [E(w)]},
        None,
    ),
    ("ajax", "GET", "logged-models/<str:model_id>/artifacts/files"): (
        lambda w: f"logged-models/{M(w)}/artifacts/files",
        lambda w: {"artifact_file_path": "MLmodel"},
        _model_file,
    ),
}
# Searches filter what they show (test_lists.py); the user and multipart calls name no object.
NOT_ONE_OBJECT = {
    ("tracking", "GET", "experiments/search"),
    ("tracking", "POST", "experiments/search"),
    ("tracking", "POST", "runs/search"),
    ("tracking", "POST", "logged-models/search"),
    ("tracking", "GET", "registered-models/search"),
    ("tracking", "GET", "model-versions/search"),
    ("tracking", "GET", "users/get"),
    ("v3", "GET", "users/permissions/get"),
    ("artifacts", "POST", "mpu/create/<path:artifact_path>"),
    ("artifacts", "POST", "mpu/complete/<path:artifact_path>"),
    ("artifacts", "POST", "mpu/abort/<path:artifact_path>"),
}


def test_every_read_endpoint_is_classified():
    assert mlflow_read_endpoints() == set(READ_CASES) | NOT_ONE_OBJECT
    assert not set(READ_CASES) & NOT_ONE_OBJECT


def _read(world: World, persona: str, key: tuple[str, str, str]) -> Any:
    area, method, _ = key
    path, message, _ = READ_CASES[key]
    url = PREFIXES[area] + path(world)
    headers = {"Authorization": f"Bearer {world.tokens[persona]}"}
    client = Client()
    if method == "GET":
        response = client.get(url, message(world), headers=headers)
    else:
        response = client.post(
            url, json.dumps(message(world)), content_type="application/json", headers=headers
        )
    return materialised(response)


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("key", sorted(READ_CASES), ids=lambda key: f"{key[0]}-{key[1]}-{key[2]}")
def test_read_endpoint_needs_read(world, persona, key):
    prepare = READ_CASES[key][2]
    if prepare is not None:
        prepare(world)
    assert_obeys(persona, Level.READ, lambda who: _read(world, who, key))
