"""The writes whose statement checks the bearer token itself (accounts.callers): a lone metric
point and a model version by name.

The token lookup is not a separate query on these paths, so every promise the lookup kept is
checked here against the statement: a revoked or unknown token, an inactive user and a role too
low are refused, with nothing written; the event names the token's user; last_used_at is touched
as the lookup touches it; a bad token is refused as such before the body is judged.
"""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiToken
from accounts.permissions import grant_creator
from accounts.roles import Role
from accounts.services import assign_role, create_api_token, revoke_api_token
from audit.models import AuditEvent
from registry.models import ModelVersion, RegisteredModel
from tests.factories import RegisteredModelFactory, UserFactory
from tracker.models import MetricPoint
from tracker.services import MetricInput, log_batch

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("postgres_statements")]

PATHS = ["native", "mlflow"]


def _client(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def _log(client: APIClient, path: str, run_id: str, *, step: int = 0, body: dict | None = None):
    if path == "native":
        body = body if body is not None else {"metrics": [{"key": "loss", "value": 0.5, "step": step}]}
        return client.post(f"/api/v1/runs/{run_id}/log-batch", body, format="json")
    point = {"run_id": run_id, "key": "loss", "value": 0.5, "step": step, "timestamp": 1}
    body = body if body is not None else point
    return client.post("/api/2.0/mlflow/runs/log-metric", body, format="json")


def _statements(call) -> tuple[int, object]:
    with CaptureQueriesContext(connection) as queries:
        response = call()
    return len(queries), response


@pytest.mark.parametrize("path", PATHS)
def test_a_point_logged_by_token_is_one_statement_and_its_event_names_the_tokens_user(contributor, run, path):
    _, raw = create_api_token(user=contributor)
    client = _client(raw)
    assert _log(client, path, run.uuid, step=0).status_code == 200  # touches last_used_at
    statements, response = _statements(lambda: _log(client, path, run.uuid, step=1))
    assert (response.status_code, statements) == (200, 1)
    event = AuditEvent.objects.filter(action="run.batch_logged").latest("sequence")
    # the same event the checked path records for this user
    log_batch(actor=contributor, run=run, metrics=[MetricInput("loss", 0.5, 2, 1)])
    checked = AuditEvent.objects.filter(action="run.batch_logged").latest("sequence")
    assert (event.actor_id, event.actor_name) == (contributor.pk, "carl-contributor")
    assert (checked.actor_id, checked.actor_name) == (event.actor_id, event.actor_name)
    assert (event.object_type, event.object_id, event.after) == (
        checked.object_type,
        checked.object_id,
        checked.after,
    )


@pytest.mark.parametrize("path", PATHS)
def test_a_revoked_token_is_refused_on_the_next_point_and_nothing_is_written(contributor, run, path):
    token, raw = create_api_token(user=contributor)
    client = _client(raw)
    assert _log(client, path, run.uuid, step=0).status_code == 200
    revoke_api_token(user=contributor, token_id=token.pk)
    events = AuditEvent.objects.count()
    response = _log(client, path, run.uuid, step=1)
    assert response.status_code == 401, response.content
    assert MetricPoint.objects.filter(run=run).count() == 1
    assert AuditEvent.objects.count() == events


@pytest.mark.parametrize("path", PATHS)
def test_an_unknown_token_or_an_inactive_user_is_refused_with_nothing_written(contributor, run, path):
    assert _log(_client("llt_not-a-token"), path, run.uuid).status_code == 401
    _, raw = create_api_token(user=contributor)
    contributor.is_active = False
    contributor.save(update_fields=["is_active"])
    assert _log(_client(raw), path, run.uuid).status_code == 401
    assert not MetricPoint.objects.filter(run=run).exists()
    assert not AuditEvent.objects.filter(action="run.batch_logged").exists()


@pytest.mark.parametrize("path", PATHS)
def test_no_credentials_are_refused_as_before(run, path):
    response = _log(APIClient(), path, run.uuid)
    assert response.status_code == 401
    assert not MetricPoint.objects.filter(run=run).exists()


@pytest.mark.parametrize("path", PATHS)
def test_a_bad_token_is_refused_as_such_before_the_body_is_judged(contributor, run, path):
    bad_body = {"metrics": [{"value": 0.5}]} if path == "native" else {"run_id": run.uuid, "value": 0.5}
    assert _log(_client("llt_not-a-token"), path, run.uuid, body=bad_body).status_code == 401
    _, raw = create_api_token(user=contributor)
    response = _log(_client(raw), path, run.uuid, body=bad_body)
    assert response.status_code == 400
    assert "key" in response.json()["message"]  # the missing field named, as before


def test_a_viewer_token_gets_the_checked_paths_refusal_on_both_apis(viewer, run, settings):
    settings.DEFAULT_PERMISSION = "EDIT"  # the role alone refuses, whatever the grants say
    _, raw = create_api_token(user=viewer)
    for path in PATHS:
        response = _log(_client(raw), path, run.uuid)
        assert response.status_code == 403
        assert "contributor role" in response.json()["message"]
    assert not MetricPoint.objects.filter(run=run).exists()


def test_a_superuser_without_groups_logs_by_the_statement(run, settings):
    settings.DEFAULT_PERMISSION = "NO_PERMISSIONS"  # only being an admin lets them in
    boss = UserFactory(username="root-user", is_superuser=True)
    _, raw = create_api_token(user=boss)
    client = _client(raw)
    _log(client, "native", run.uuid, step=0)
    statements, response = _statements(lambda: _log(client, "native", run.uuid, step=1))
    assert (response.status_code, statements) == (200, 1)
    assert AuditEvent.objects.filter(action="run.batch_logged").latest("sequence").actor_name == "root-user"


def test_a_role_from_any_group_counts_as_the_lookup_counts_it(run):
    both = UserFactory(username="two-hats")
    assign_role(user=both, role=Role.VIEWER)
    _, raw = create_api_token(user=both)
    assert _log(_client(raw), "native", run.uuid, step=0).status_code == 403
    assign_role(user=both, role=Role.CONTRIBUTOR)  # the higher of the two groups counts
    assert both.groups.count() >= 1
    assert _log(_client(raw), "native", run.uuid, step=1).status_code == 200


@pytest.mark.parametrize("path", PATHS)
def test_last_used_at_is_touched_when_stale_and_left_alone_when_fresh(contributor, run, path):
    token, raw = create_api_token(user=contributor)
    stale = timezone.now() - timedelta(minutes=5)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=stale)
    assert _log(_client(raw), path, run.uuid, step=0).status_code == 200
    touched = ApiToken.objects.get(pk=token.pk).last_used_at
    assert touched > stale + timedelta(minutes=4)
    fresh = timezone.now() - timedelta(seconds=20)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=fresh)
    assert _log(_client(raw), path, run.uuid, step=1).status_code == 200
    assert ApiToken.objects.get(pk=token.pk).last_used_at == fresh


@pytest.mark.django_db(transaction=True)
def test_a_token_row_another_transaction_holds_is_not_waited_for(contributor, run):
    """The touch skips a locked token row: a revocation or the same token's other request holding
    it never makes a point wait (nor deadlock with it)."""
    import psycopg

    token, raw = create_api_token(user=contributor)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=None)
    settings_dict = connection.settings_dict
    with psycopg.connect(
        host=settings_dict["HOST"],
        port=settings_dict["PORT"],
        user=settings_dict["USER"],
        dbname=settings_dict["NAME"],
        password=settings_dict["PASSWORD"] or None,
    ) as holder:
        holder.execute(f"SELECT 1 FROM {ApiToken._meta.db_table} WHERE id = %s FOR UPDATE", [token.pk])
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '5s'")  # a wait fails the test instead of hanging it
        try:
            response = _log(_client(raw), "native", run.uuid)
        finally:
            with connection.cursor() as cursor:
                cursor.execute("RESET lock_timeout")
        holder.rollback()
    assert response.status_code == 200, response.content
    assert MetricPoint.objects.filter(run=run).count() == 1
    assert ApiToken.objects.get(pk=token.pk).last_used_at is None  # left to whoever held it


# A model version by name: the other write whose statement checks the token --------------------


def _register(client: APIClient, path: str, run, *, body: dict | None = None):
    if path == "native":
        body = body if body is not None else {"run_id": run.uuid}
        return client.post("/api/v1/models/digits/versions", body, format="json")
    body = body if body is not None else {"name": "digits", "run_id": run.uuid}
    return client.post("/api/2.0/mlflow/model-versions/create", body, format="json")


@pytest.mark.parametrize("path", PATHS)
def test_a_version_registered_by_token_is_one_statement_created_by_the_tokens_user(contributor, run, path):
    model = RegisteredModelFactory(name="digits")
    grant_creator(actor=contributor, obj=model)  # MANAGE for carl, as for a model he created
    _, raw = create_api_token(user=contributor)
    client = _client(raw)
    assert _register(client, path, run).status_code in (200, 201)  # touches last_used_at
    statements, response = _statements(lambda: _register(client, path, run))
    assert (response.status_code in (200, 201), statements) == (True, 1), response.content
    body = response.json()
    shown = body["created_by"] if path == "native" else body["model_version"]["user_id"]
    assert shown == "carl-contributor"
    stored = ModelVersion.objects.get(model=model, version=2)
    assert stored.created_by == contributor
    event = AuditEvent.objects.filter(action="model_version.created").latest("sequence")
    assert (event.actor_id, event.actor_name, event.object_id) == (
        contributor.pk,
        "carl-contributor",
        f"id:{stored.pk}",
    )


@pytest.mark.parametrize("path", PATHS)
def test_a_version_by_a_revoked_or_viewer_token_is_refused_with_nothing_written(
    contributor, viewer, run, path, settings
):
    settings.DEFAULT_PERMISSION = "EDIT"  # only the token or the role can refuse
    model = RegisteredModelFactory(name="digits")
    token, raw = create_api_token(user=contributor)
    revoke_api_token(user=contributor, token_id=token.pk)
    _, viewer_raw = create_api_token(user=viewer)
    before = RegisteredModel.objects.values_list("updated_at", "last_version").get(pk=model.pk)
    assert _register(_client(raw), path, run).status_code == 401
    refused = _register(_client(viewer_raw), path, run)
    assert refused.status_code == 403 and "contributor role" in refused.json()["message"]
    assert _register(_client("llt_not-a-token"), path, run, body={}).status_code == 401  # not 400
    assert not ModelVersion.objects.filter(model=model).exists()
    assert RegisteredModel.objects.values_list("updated_at", "last_version").get(pk=model.pk) == before
    assert not AuditEvent.objects.filter(action="model_version.created").exists()


# The same endpoints without a bearer token: looked up first, as every other endpoint -----------


def test_a_session_logs_and_registers_as_its_user_on_the_deferring_native_views(contributor, run):
    model = RegisteredModelFactory(name="digits")
    grant_creator(actor=contributor, obj=model)
    client = APIClient()
    client.force_login(contributor)
    assert _log(client, "native", run.uuid).status_code == 200
    response = _register(client, "native", run)
    assert response.status_code == 201 and response.json()["created_by"] == "carl-contributor"
    events = AuditEvent.objects.filter(action__in=["run.batch_logged", "model_version.created"])
    assert set(events.values_list("actor_name", flat=True)) == {"carl-contributor"}


def test_basic_credentials_on_the_deferring_mlflow_endpoints_are_checked_first(contributor, run):
    contributor.set_password("s3cret-pass")
    contributor.save(update_fields=["password"])

    def basic(password: str) -> APIClient:
        client = APIClient()
        raw = base64.b64encode(f"carl-contributor:{password}".encode()).decode()
        client.credentials(HTTP_AUTHORIZATION=f"Basic {raw}")
        return client

    assert _log(basic("wrong"), "mlflow", run.uuid, step=0).status_code == 401
    assert not MetricPoint.objects.filter(run=run).exists()
    assert _log(basic("s3cret-pass"), "mlflow", run.uuid, step=1).status_code == 200
    event = AuditEvent.objects.filter(action="run.batch_logged").latest("sequence")
    assert event.actor_name == "carl-contributor"
