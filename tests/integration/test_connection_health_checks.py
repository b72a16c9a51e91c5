"""The PostgreSQL backend's health check (config/postgresql/base.py) against a real server whose
side of the connection is killed between requests: skipped just after a clean request, made
after the window, and a connection that failed a request is replaced for the next one."""

from __future__ import annotations

import time

import psycopg
import pytest
from django.db import OperationalError, close_old_connections, connection

pytestmark = pytest.mark.usefixtures("postgres")


@pytest.fixture
def kept_connection():
    """Connections kept between requests, as CONN_MAX_AGE keeps them in production (the test
    settings close them after each request)."""
    connection.close()
    connection.settings_dict["CONN_MAX_AGE"] = 60
    yield connection
    connection.settings_dict["CONN_MAX_AGE"] = 0
    connection.close()


def _request() -> int:
    """What a request does to the connection: Django's checks as it starts, a query, its checks
    as it ends."""
    close_old_connections()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            return cursor.fetchone()[0]
    finally:
        close_old_connections()


def _kill(pid: int) -> None:
    """The server ends that backend (a restart, an idle timeout) and it is gone."""
    params = connection.get_connection_params()
    with psycopg.connect(**params, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
        for _ in range(200):
            if not admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone():
                return
            time.sleep(0.01)
    raise AssertionError(f"backend {pid} did not end")


def test_a_connection_idle_past_the_window_is_checked_and_replaced(kept_connection, settings):
    settings.DB_HEALTH_CHECK_WINDOW = 0.05
    first = _request()
    assert _request() == first  # kept between requests
    _kill(first)
    time.sleep(0.1)  # past the window: the check runs, finds it dead and connects anew
    replaced = _request()
    assert replaced != first


def test_inside_the_window_no_check_is_made_and_one_request_pays_for_a_dead_connection(
    kept_connection, settings
):
    settings.DB_HEALTH_CHECK_WINDOW = 60
    first = _request()
    _kill(first)
    with pytest.raises(OperationalError):
        _request()  # no SELECT 1 went first: the request's own statement met the dead connection
    assert _request() != first  # closed after the failed request, connected anew


def test_with_the_window_off_every_request_is_checked(kept_connection, settings):
    settings.DB_HEALTH_CHECK_WINDOW = 0
    first = _request()
    _kill(first)
    assert _request() != first
