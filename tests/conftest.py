"""Shared fixtures: role personas, authenticated API clients, and the service-or-skip rule."""

from __future__ import annotations

import os

import pytest
from django.db import connection
from rest_framework.test import APIClient

from accounts.roles import Role
from accounts.services import assign_role, create_api_token
from tests.factories import ExperimentFactory, RunFactory, UserFactory

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES", "").lower() in {"1", "true", "yes"}


def skip_or_fail(reason: str) -> None:
    """Skip a test whose service is missing, except in CI (REQUIRE_SERVICES=1) where that fails."""
    if REQUIRE_SERVICES:
        pytest.fail(f"REQUIRE_SERVICES is set but {reason}")
    pytest.skip(reason)


@pytest.fixture
def postgres(transactional_db):
    """The real PostgreSQL, for what only it can show: row locks, concurrent writers, COPY."""
    if connection.vendor != "postgresql":
        skip_or_fail("this test needs PostgreSQL: set DATABASE_URL=postgres://…")
    return connection


@pytest.fixture
def postgres_statements(db):
    """For statement budgets of the PostgreSQL hot paths (one-statement points and versions):
    SQLite takes the general path, with its own count, and is not what they measure."""
    if connection.vendor != "postgresql":
        skip_or_fail("these statement budgets are PostgreSQL's: set DATABASE_URL=postgres://…")


def _persona(username: str, role: Role | None):
    user = UserFactory(username=username)
    if role is not None:
        assign_role(user=user, role=role)
    return user


@pytest.fixture
def viewer(db):
    return _persona("vera-viewer", Role.VIEWER)


@pytest.fixture
def contributor(db):
    return _persona("carl-contributor", Role.CONTRIBUTOR)


@pytest.fixture
def requester(db):
    return _persona("rita-requester", Role.CONTRIBUTOR)


@pytest.fixture
def reviewer(db):
    return _persona("rob-reviewer", Role.REVIEWER)


@pytest.fixture
def admin(db):
    return _persona("ada-admin", Role.ADMIN)


@pytest.fixture
def outsider(db):
    """Logged in, but in no role group: may read or change nothing."""
    return _persona("oscar-outsider", None)


@pytest.fixture
def api_client_for(db):
    """`api_client_for(user)` → an APIClient sending that user's fresh bearer token."""

    def make(user) -> APIClient:
        _, raw = create_api_token(user=user, name="test")
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        return client

    return make


@pytest.fixture
def anonymous_client() -> APIClient:
    return APIClient()


@pytest.fixture
def experiment(db):
    return ExperimentFactory(name="digits-sweep")


@pytest.fixture
def run(experiment, contributor):
    return RunFactory(experiment=experiment, user=contributor, name="baseline")


@pytest.fixture(autouse=True)
def audit_numbers_start_at_one(request):
    """Tests name audit events by number: test transactions roll back, a PostgreSQL sequence
    does not, so without this the numbers would depend on which tests ran before."""
    marker = request.node.get_closest_marker("django_db")
    if marker is None and not {"db", "transactional_db"} & set(request.fixturenames):
        return
    transactional = "transactional_db" in request.fixturenames or (
        marker and marker.kwargs.get("transaction")
    )
    request.getfixturevalue("transactional_db" if transactional else "db")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT setval('audit_event_sequence', 1, false)")


@pytest.fixture
def receiver():
    """A real HTTP endpoint for webhooks (tests/webhook_receiver.py), closed after the test."""
    from tests.webhook_receiver import start_receiver

    receiver = start_receiver()
    yield receiver
    receiver.close()
