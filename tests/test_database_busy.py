"""SQLite holds one writer at a time: a request that waited past the busy timeout gets a 503
with Retry-After, which clients retry, instead of a server error page (DatabaseBusy)."""

from __future__ import annotations

import pytest
from django.db import OperationalError
from django.test import Client

from tracker import selectors

pytestmark = pytest.mark.django_db

BUSY = "the database is busy with another write (SQLite takes one at a time); retry in a few seconds"


@pytest.fixture
def locked(monkeypatch):
    """Every experiment lookup fails as SQLite does when the write lock stays taken."""

    def wait_too_long(**kwargs):
        raise OperationalError("database is locked")

    monkeypatch.setattr(selectors, "get_experiment", wait_too_long)


@pytest.mark.parametrize(
    "url", ["/api/v1/experiments/{id}", "/api/2.0/mlflow/experiments/get?experiment_id={id}"]
)
def test_an_api_request_that_met_the_lock_is_a_json_503_to_retry(
    api_client_for, contributor, experiment, locked, url
):
    response = api_client_for(contributor).get(url.format(id=experiment.pk))
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json() == {"error_code": "TEMPORARILY_UNAVAILABLE", "message": BUSY, "field": None}
    assert "no-store" in response["Cache-Control"]


def test_a_pages_own_json_request_that_met_the_lock_gets_json(contributor, experiment, locked):
    """The chart and status endpoints are read by fetch, which asks for JSON and parses it."""
    client = Client()
    client.force_login(contributor)
    response = client.get(f"/experiments/{experiment.pk}/runs/", HTTP_ACCEPT="application/json")
    assert response.status_code == 503
    assert response.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"


def test_a_page_that_met_the_lock_is_a_503_saying_so(contributor, experiment, locked):
    client = Client()
    client.force_login(contributor)
    response = client.get(f"/experiments/{experiment.pk}/runs/")
    assert (response.status_code, response["Retry-After"]) == (503, "5")
    assert response.content.decode() == BUSY


def test_other_database_errors_stay_server_errors(api_client_for, contributor, experiment, monkeypatch):
    def broken(**kwargs):
        raise OperationalError("no such table: tracker_run")

    monkeypatch.setattr(selectors, "get_experiment", broken)
    with pytest.raises(OperationalError):
        api_client_for(contributor).get(f"/api/v1/experiments/{experiment.pk}")
