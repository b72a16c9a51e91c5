"""Round-trip budgets of the single writes a training script makes most (issue 13).

Each statement is a round trip to the database, and a single write's cost is mostly round trips,
so these count statements per request, as NetBox's query-count guards do. In these tests every
request runs inside the test's transaction, which the single writes join: their BEGIN and COMMIT,
which travel with their statements outside it, do not appear.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.permissions import Level
from accounts.roles import Role
from accounts.services import assign_role
from audit.models import AuditEvent
from registry.models import ModelVersion
from tests.factories import RegisteredModelFactory, RunFactory, UserFactory
from tracker.models import (
    DEFAULT_EXPERIMENT_ID,
    ExperimentKey,
    MetricKey,
    MetricPoint,
    MetricRollup,
    MetricSummary,
)
from tracker.permissions import set_experiment_permission
from tracker.services import MetricInput, delete_run, log_batch
from tracker.services.rollups import fold_stale_rollups

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("postgres_statements")]


@pytest.fixture
def api(contributor_api):
    contributor_api.get("/api/v1/me")  # the token's last_used_at is now fresh: no touch below
    return contributor_api


def _count(call) -> tuple[int, object]:
    with CaptureQueriesContext(connection) as queries:
        response = call()
    assert response.status_code in (200, 201), response.content[:500]
    return len(queries), response


def test_an_authenticated_no_op_costs_one_statement(api):
    assert _count(lambda: api.get("/api/v1/me"))[0] == 1  # the token, its user and the role


@pytest.mark.parametrize("key", ["loss", "a-new-key"])
def test_a_single_point_costs_one_statement(api, run, key):
    path = f"/api/v1/runs/{run.uuid}/log-batch"
    api.post(path, {"metrics": [{"key": "loss", "value": 1.0}]}, format="json")
    body = {"metrics": [{"key": key, "value": 0.25, "step": 7, "timestamp": 1000}]}
    statements, response = _count(lambda: api.post(path, body, format="json"))
    # the token's user and role, the run, found with that user's grant on its experiment, with
    # the point, its summary, key set and audit event (outside a test's transaction, BEGIN and
    # COMMIT travel with it); rollups come later
    assert statements == 1
    assert response.json()["points_inserted"] == 1
    summary = MetricSummary.objects.get(run=run, key__name=key)
    assert (summary.last_value, summary.last_step, summary.count) == (0.25, 7, 1 if key != "loss" else 2)
    assert (summary.rollups_stale_from, summary.rollups_stale_to) == (7 if key != "loss" else 0, 7)
    assert fold_stale_rollups() == (1 if key == "loss" else 2)  # the first call's point too
    assert MetricRollup.objects.filter(run=run, key__name=key, count__gte=1).count() == 10
    assert ExperimentKey.objects.filter(experiment=run.experiment, kind="metric", key=key).exists()
    event = AuditEvent.objects.filter(action="run.batch_logged").latest("sequence")
    assert event.after["metrics"] == {"received": 1, "inserted": 1, "keys": [key]}


def _nothing_written(run, key: str) -> bool:
    return not (
        MetricPoint.objects.filter(run=run).exists()
        or MetricKey.objects.filter(name=key).exists()
        or AuditEvent.objects.filter(action="run.batch_logged").exists()
    )


@pytest.mark.parametrize("path", ["native", "mlflow"])
def test_a_point_the_statement_cannot_store_gets_the_checked_paths_refusal(
    api_client_for, contributor, viewer, outsider, admin, run, settings, path
):
    """The one statement finds the run only if it is active and the caller may edit it; where it
    is not, nothing at all is written (not even the new key's name) and the refusal is the
    checked path's own."""
    settings.DEFAULT_PERMISSION = "READ"

    def log(user, run_id: str):
        key = f"fresh-{user.username}-{run_id[:4]}"
        if path == "native":
            body = {"metrics": [{"key": key, "value": 1.0}]}
            response = api_client_for(user).post(f"/api/v1/runs/{run_id}/log-batch", body, format="json")
        else:
            body = {"run_id": run_id, "key": key, "value": 1.0, "step": 0, "timestamp": 1}
            response = api_client_for(user).post("/api/2.0/mlflow/runs/log-metric", body, format="json")
        return response, key

    stranger = UserFactory(username="stranger")
    assign_role(user=stranger, role=Role.CONTRIBUTOR)
    refusals = [
        (viewer, run.uuid, 403, "needs the contributor role"),
        (outsider, run.uuid, 403, "the viewer role"),
        (stranger, run.uuid, 403, "needs EDIT permission"),  # the default is READ
        (contributor, "0" * 32, 404, "does not exist" if path == "native" else "not found"),
    ]
    for user, run_id, status, words in refusals:
        response, key = log(user, run_id)
        assert (response.status_code, words in response.json()["message"]) == (status, True), response.json()
        assert _nothing_written(run, key)
    delete_run(actor=admin, run=run)
    response, key = log(admin, run.uuid)
    assert (response.status_code, "is deleted" in response.json()["message"]) == (400, True)
    assert _nothing_written(run, key)


def test_the_statement_applies_grants_and_defaults_as_the_checked_path_does(
    api_client_for, contributor, admin, run, settings
):
    settings.DEFAULT_PERMISSION = "NO_PERMISSIONS"
    body = {"metrics": [{"key": "loss", "value": 0.5}]}
    default_run = RunFactory(experiment_id=DEFAULT_EXPERIMENT_ID, user=contributor)
    for grantee, level in [(contributor, Level.EDIT), (admin, Level.NO_PERMISSIONS)]:
        set_experiment_permission(actor=admin, experiment=run.experiment, grantee=grantee, level=level)
    writes = [
        (contributor, run),  # an EDIT grant on its experiment
        (admin, run),  # an admin edits everything, whatever its grant says
        (UserFactory(username="newcomer"), default_run),  # Default is everyone's to log to
    ]
    assign_role(user=writes[2][0], role=Role.CONTRIBUTOR)
    for user, target in writes:
        client = api_client_for(user)
        client.get("/api/v1/me")
        path = f"/api/v1/runs/{target.uuid}/log-batch"
        statements, response = _count(lambda: client.post(path, body, format="json"))  # noqa: B023
        assert (statements, response.json()["points_inserted"]) == (1, 1), user.username


def test_a_retried_point_stores_nothing_and_says_so(api, run):
    body = {"metrics": [{"key": "loss", "value": 0.5, "step": 3, "timestamp": 1000}]}
    first = api.post(f"/api/v1/runs/{run.uuid}/log-batch", body, format="json").json()
    again = api.post(f"/api/v1/runs/{run.uuid}/log-batch", body, format="json").json()
    assert (first["points_inserted"], again["points_inserted"]) == (1, 0)
    assert MetricPoint.objects.filter(run=run).count() == 1
    assert MetricSummary.objects.get(run=run).count == 1
    fold_stale_rollups()
    rollup = MetricRollup.objects.get(run=run, level=0)
    assert rollup.count == 1
    event = AuditEvent.objects.filter(action="run.batch_logged").latest("sequence")
    assert event.after["metrics"] == {"received": 1, "inserted": 0, "keys": ["loss"]}


def test_nan_and_infinity_single_points_fold_in_as_batches_do(api, run):
    for step, value in enumerate(["NaN", 2.0, "Infinity", -1.0]):
        body = {"metrics": [{"key": "odd", "value": value, "step": step, "timestamp": 1}]}
        assert api.post(f"/api/v1/runs/{run.uuid}/log-batch", body, format="json").status_code == 200
    summary = MetricSummary.objects.get(run=run)
    assert (summary.count, summary.min_value, summary.max_value, summary.last_value) == (
        4,
        -1.0,
        float("inf"),
        -1.0,
    )
    fold_stale_rollups()
    rollup = MetricRollup.objects.get(run=run, level=0)
    assert (rollup.count, rollup.min_value, rollup.max_value, rollup.odd_step, rollup.odd_is_nan) == (
        4,
        -1.0,
        2.0,
        0,
        True,
    )


def test_mlflow_log_metric_costs_the_same(api, run):
    body = {"run_id": run.uuid, "key": "loss", "value": 0.5, "step": 1, "timestamp": 5}
    api.post("/api/2.0/mlflow/runs/log-metric", {**body, "step": 0}, format="json")
    statements, _ = _count(lambda: api.post("/api/2.0/mlflow/runs/log-metric", body, format="json"))
    assert statements == 1


@pytest.mark.parametrize("path", ["native", "mlflow"])
def test_a_model_version_costs_one_statement_with_its_audit_event(api, run, path):
    model = RegisteredModelFactory(name="digits")

    def create():
        if path == "native":
            return api.post("/api/v1/models/digits/versions", {"run_id": run.uuid}, format="json")
        message = {"name": "digits", "source": f"{run.artifact_uri}/model", "run_id": run.uuid}
        return api.post("/api/2.0/mlflow/model-versions/create", message, format="json")

    create()
    statements, response = _count(create)
    # one statement: the token's user and role, the UPDATE that locks the model (found by name,
    # with that user's grant) and raises its version counter, the INSERT of the version (its run
    # found by id, with the user's grant) and its audit event
    assert statements == 1
    body = response.json()
    version = body["version"] if path == "native" else body["model_version"]
    assert int(version if path == "native" else version["version"]) == 2
    stored = ModelVersion.objects.get(model=model, version=2)
    assert stored.run == run and stored.source == f"{run.artifact_uri}/model"
    assert stored.created_at is not None and stored.updated_at >= stored.created_at
    if path == "native":
        assert (body["aliases"], body["tags"], body["stage"]) == ([], {}, "None")
    event = AuditEvent.objects.filter(action="model_version.created").latest("sequence")
    assert (event.object_type, event.object_id, event.actor_name) == (
        "registry.modelversion",
        f"id:{stored.pk}",
        "carl-contributor",
    )
    assert event.after == {
        "model": "digits",
        "version": 2,
        "run": run.uuid,
        "source": stored.source,
        "stage": "None",
        "description": "",
        "tags": {},
    }


def test_single_points_of_every_integer_width_fold_in_after_the_statement_is_prepared(contributor, run):
    """psycopg prepares a statement the fifth time a connection runs it, and sends each integer
    as int2, int4 or int8 by its size: every width, before and after, lands the same."""
    steps = [0, 1, 2, 3, 4, 5, 40_000, 2**40, -(2**40), -3, 2**63 - 1, -(2**63), 6, 7]
    for step in steps:
        log_batch(actor=contributor, run=run, metrics=[MetricInput("loss", float(step % 7), step, 2**41)])
    summary = MetricSummary.objects.get(run=run)
    assert (summary.count, summary.last_step, summary.min_value, summary.max_value) == (
        len(steps),
        2**63 - 1,
        0.0,
        6.0,
    )
    assert sorted(MetricPoint.objects.filter(run=run).values_list("step", flat=True)) == sorted(steps)
    assert (summary.rollups_stale_from, summary.rollups_stale_to) == (-(2**63), 2**63 - 1)
    assert fold_stale_rollups() == 1
    finest = MetricRollup.objects.filter(run=run, level=0)
    assert sum(finest.values_list("count", flat=True)) == len(steps)
    assert finest.get(bucket=-1).count == 1  # -3 // 64: Python's floor, as every batch buckets it
