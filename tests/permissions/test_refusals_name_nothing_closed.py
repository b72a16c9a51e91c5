"""A refusal never names what its reader may not read.

Experiment, request and upload ids are sequential: a 403 naming the experiment (or model) behind
an id would let anyone list every name by trying the ids one after another. So every endpoint of
the permission matrices (native API, MLflow API, pages), and the lists that take an experiment,
are walked as the stranger (NO_PERMISSIONS on everything), with the world's objects renamed to
secrets. A name may come back only where the caller typed it (a registered model addressed by
name, an experiment looked up by name).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote_plus

import pytest
from django.test import Client
from django.test.client import RequestFactory
from django.urls import reverse
from django.utils.encoding import force_bytes
from rest_framework.test import APIClient

from registry.models import RegisteredModel
from tracker.models import Experiment, LoggedModel, Run

from . import test_mlflow_api, test_native_api, test_pages
from .conftest import World, materialised, promotion_request, upload

SECRETS = {
    "experiment": "TOPSECRET-experiment",
    "run": "TOPSECRET-run",
    "model": "TOPSECRET-model",
    "logged_model": "TOPSECRET-logged-model",
}


@pytest.fixture
def secret_world(world: World) -> World:
    """The world, its experiment, run, logged model and registered model renamed to secrets."""
    for model, obj, key in (
        (Experiment, world.experiment, "experiment"),
        (Run, world.run, "run"),
        (LoggedModel, world.logged_model, "logged_model"),
        (RegisteredModel, world.model, "model"),
    ):
        model._default_manager.filter(pk=obj.pk).update(name=SECRETS[key])
        obj.name = SECRETS[key]
    world.version.model = world.model
    return world


@pytest.fixture
def typed(monkeypatch) -> list[str]:
    """What the test client sent (paths, query strings, bodies), decoded: the names typed."""
    sent: list[str] = []
    generic = RequestFactory.generic

    def recording(self, method, path, data="", *args, **kwargs):
        query = kwargs.get("QUERY_STRING", "") or str(kwargs.get("query_params") or "")
        sent.append(unquote_plus(f"{path} {query} {force_bytes(data).decode(errors='replace')}"))
        return generic(self, method, path, data, *args, **kwargs)

    monkeypatch.setattr(RequestFactory, "generic", recording)
    return sent


def _leaks(cases: Iterable[tuple[Any, Callable[[], Any]]], typed: list[str]) -> list[tuple[Any, str, int]]:
    """(case, secret, status) for each answer naming a secret its request did not type."""
    found = []
    for case, send in cases:
        typed.clear()
        response = materialised(send())
        answer = response.content.decode(errors="replace")
        said = " ".join(typed)
        found += [
            (case, name, response.status_code)
            for name in SECRETS.values()
            if name in answer and name not in said
        ]
    return found


def test_native_api_refusals_name_nothing_closed(secret_world, typed):
    world = secret_world
    reads = [
        (("GET", name), lambda name=name: test_native_api._get(world, "stranger", name))
        for name in sorted(test_native_api.READS)
    ]
    writes = [
        (key, lambda key=key: test_native_api._send(world, "stranger", *key))
        for key in sorted(test_native_api.CASES)
    ]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {world.tokens['stranger']}")
    lists = [
        ((url, query), lambda url=url, query=query: client.get(url, query))
        for url, query in (
            (reverse("tracker-api:runs"), {"experiment_id": world.experiment.pk}),
            (reverse("tracker-api:uploads"), {"experiment_id": world.experiment.pk}),
            (reverse("tracker-api:uploads"), {"run_id": world.run.uuid}),
            (reverse("registry-api:promotion-requests"), {}),
        )
    ]
    assert _leaks([*reads, *writes, *lists], typed) == []


def test_mlflow_api_refusals_name_nothing_closed(secret_world, typed):
    world = secret_world
    for _, _, prepare in test_mlflow_api.READ_CASES.values():
        if prepare is not None:
            prepare(world)
    reads = [
        (key, lambda key=key: test_mlflow_api._read(world, "stranger", key))
        for key in sorted(test_mlflow_api.READ_CASES)
    ]
    writes = [
        (key, lambda key=key: test_mlflow_api._send(world, "stranger", key))
        for key in sorted(test_mlflow_api.CASES)
    ]
    client = Client()
    headers = {"Authorization": f"Bearer {world.tokens['stranger']}"}
    ids = [str(world.experiment.pk)]
    searches = [
        (
            (path, body),
            lambda path=path, body=body: client.post(
                path, body, content_type="application/json", headers=headers
            ),
        )
        for path, body in (
            ("/api/2.0/mlflow/runs/search", {"experiment_ids": ids}),
            ("/api/2.0/mlflow/logged-models/search", {"experiment_ids": ids}),
            ("/api/2.0/mlflow/experiments/search", {"max_results": 1000}),
            ("/api/2.0/mlflow/registered-models/search", {}),
        )
    ]
    assert _leaks([*reads, *writes, *searches], typed) == []


def test_page_refusals_name_nothing_closed(secret_world, typed):
    world = secret_world
    reads = [
        (name, lambda name=name: test_pages._get(world, "stranger", name))
        for name in sorted(test_pages.PAGE_READS)
    ]
    writes = [
        (key, lambda key=key: test_pages._post(world, "stranger", key)) for key in sorted(test_pages.WRITES)
    ]
    client = Client()
    client.force_login(world.user("stranger"))
    experiment = world.experiment.pk
    lists = [
        ((name, query), lambda name=name, query=query: client.get(reverse(f"dashboard:{name}"), query))
        for name, query in (
            ("runs", {"experiments": experiment}),
            ("run-export", {"experiments": experiment}),
            ("run-count", {"experiments": experiment}),
            ("upload-list", {"experiment": experiment}),
            ("upload-list", {"run": world.run.uuid}),
            ("review-queue", {}),
            ("registry", {}),
            ("experiment-list", {}),
        )
    ]
    assert _leaks([*reads, *writes, *lists], typed) == []


def test_a_refusal_names_an_experiment_by_its_id_and_a_request_by_its_number(secret_world, api_client_for):
    world = secret_world
    client = api_client_for(world.user("stranger"))
    closed = f"permission on experiment {world.experiment.pk}; you have NO_PERMISSIONS."
    experiment = client.get(reverse("tracker-api:experiment", kwargs={"experiment_id": world.experiment.pk}))
    assert experiment.json()["message"] == (f"Reading an experiment needs READ {closed}")
    run = client.get(reverse("tracker-api:run", kwargs={"run_id": world.run.uuid}))
    assert run.json()["message"] == (f"Reading a run needs READ {closed}")
    number = promotion_request(world).pk
    request = client.get(reverse("registry-api:promotion-request", kwargs={"request_id": number}))
    assert request.json()["message"] == (
        f"Reading a promotion request needs READ permission on the registered model of request #{number}; "
        "you have NO_PERMISSIONS."
    )
    by_name = client.get(reverse("registry-api:model", kwargs={"name": world.model.name}))
    assert by_name.json()["message"] == (
        "Reading a registered model needs READ permission on registered model TOPSECRET-model; "
        "you have NO_PERMISSIONS."
    )
    uploaded = client.get(reverse("tracker-api:upload", kwargs={"upload_id": upload(world).pk}))
    assert uploaded.json()["message"] == (f"Reading an upload needs READ {closed}")


def test_a_model_addressed_by_name_is_named_in_a_grant_refusal(world, api_client_for):
    url = reverse(
        "registry-api:model-permission", kwargs={"name": world.model.name, "username": "stranger-user"}
    )
    for method, body, action in (
        ("put", {"permission": "READ"}, "Granting"),
        ("delete", {}, "Removing"),
    ):
        refused = getattr(api_client_for(world.user("reader")), method)(url, body, format="json")
        assert refused.json()["message"] == (
            f"{action} a registered model permission needs MANAGE permission on registered model "
            "guarded-model; you have READ."
        )
