"""Every write endpoint of the native API (/api/v1), walked as owner, editor, reader and stranger.

The endpoints come from the URL conf: a write endpoint missing from CASES fails
`test_every_write_endpoint_has_a_case`, so a new endpoint cannot skip these checks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.test import APIClient

from accounts.permissions import Level

from .conftest import PERSONAS, World, assert_obeys, materialised, promotion_request, upload

WRITE_METHODS = ("post", "put", "patch", "delete")


def _walk(patterns: list[Any], namespace: str = "") -> Iterator[tuple[str, Any]]:
    for entry in patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from _walk(entry.url_patterns, inner)
        elif isinstance(entry, URLPattern) and entry.name:
            yield f"{namespace}{entry.name}", entry.callback


def native_write_endpoints() -> set[tuple[str, str]]:
    """(URL name, method) of every native-API operation that writes."""
    api = next(p for p in get_resolver().url_patterns if str(p.pattern) == "api/")
    found = set()
    for name, callback in _walk(api.url_patterns):
        view = getattr(callback, "cls", None)
        for method in WRITE_METHODS:
            if view is not None and any(method in vars(cls) for cls in view.__mro__):
                found.add((name, method))
    return found


# (URL name, method) → (path kwargs, body, the level it needs). A level of None: no object's
# permission decides (a role, the promotion policy or the requester does), so every persona
# gets the same answer.
Case = tuple[Callable[[World], dict], Callable[[World], Any], Level | None]
EXP = lambda w: {"experiment_id": w.experiment.pk}  # noqa: E731
RUN = lambda w: {"run_id": w.run.uuid}  # noqa: E731
MODEL = lambda w: {"name": w.model.name}  # noqa: E731
VERSION = lambda w: {"name": w.model.name, "version": 1}  # noqa: E731
NOBODY = lambda w: {}  # noqa: E731
EMPTY = lambda w: {}  # noqa: E731
CASES: dict[tuple[str, str], Case] = {
    ("tracker-api:experiments", "post"): (NOBODY, lambda w: {"name": "new"}, None),
    ("tracker-api:experiment", "patch"): (EXP, lambda w: {"description": "x"}, Level.EDIT),
    ("tracker-api:experiment", "delete"): (EXP, EMPTY, Level.MANAGE),
    ("tracker-api:experiment-restore", "post"): (EXP, EMPTY, Level.MANAGE),
    ("tracker-api:experiment-permission", "put"): (
        lambda w: {**EXP(w), "username": "stranger-user"},
        lambda w: {"permission": "READ"},
        Level.MANAGE,
    ),
    ("tracker-api:experiment-permission", "delete"): (
        lambda w: {**EXP(w), "username": "reader-user"},
        EMPTY,
        Level.MANAGE,
    ),
    ("tracker-api:runs", "post"): (NOBODY, lambda w: {"experiment_id": str(w.experiment.pk)}, Level.EDIT),
    ("tracker-api:run", "patch"): (RUN, lambda w: {"run_name": "renamed"}, Level.EDIT),
    ("tracker-api:run", "delete"): (RUN, EMPTY, Level.MANAGE),
    ("tracker-api:run-restore", "post"): (RUN, EMPTY, Level.MANAGE),
    ("tracker-api:run-log-batch", "post"): (
        RUN,
        lambda w: {"metrics": [{"key": "acc", "value": 0.9, "step": 2}]},
        Level.EDIT,
    ),
    ("tracker-api:run-tag", "delete"): (lambda w: {**RUN(w), "key": "team"}, EMPTY, Level.EDIT),
    ("tracker-api:run-datasets", "post"): (
        RUN,
        lambda w: {"datasets": [{"name": "digits", "digest": "abc"}]},
        Level.EDIT,
    ),
    ("tracker-api:artifacts", "post"): (
        RUN,
        lambda w: {"file": SimpleUploadedFile("a.txt", b"a"), "path": "a.txt"},
        Level.EDIT,
    ),
    ("tracker-api:artifact", "put"): (lambda w: {**RUN(w), "path": "b.txt"}, lambda w: b"b", Level.EDIT),
    ("tracker-api:artifact", "delete"): (
        lambda w: {**RUN(w), "path": "notes/readme.txt"},
        EMPTY,
        Level.MANAGE,
    ),
    ("tracker-api:uploads", "post"): (
        NOBODY,
        lambda w: {
            "file": SimpleUploadedFile("m.csv", b"key,step,value\nloss,1,0.5\n"),
            "run_id": w.run.uuid,
        },
        Level.EDIT,
    ),
    ("registry-api:models", "post"): (NOBODY, lambda w: {"name": "another"}, None),
    ("registry-api:model", "patch"): (MODEL, lambda w: {"description": "x"}, Level.EDIT),
    ("registry-api:model", "delete"): (MODEL, EMPTY, Level.MANAGE),
    ("registry-api:model-restore", "post"): (MODEL, EMPTY, None),  # admins only
    ("registry-api:model-permission", "put"): (
        lambda w: {**MODEL(w), "username": "stranger-user"},
        lambda w: {"permission": "READ"},
        Level.MANAGE,
    ),
    ("registry-api:model-permission", "delete"): (
        lambda w: {**MODEL(w), "username": "reader-user"},
        EMPTY,
        Level.MANAGE,
    ),
    ("registry-api:versions", "post"): (MODEL, lambda w: {"run_id": w.run.uuid}, Level.EDIT),
    ("registry-api:version", "patch"): (VERSION, lambda w: {"description": "x"}, Level.EDIT),
    ("registry-api:version", "delete"): (VERSION, EMPTY, Level.MANAGE),
    ("registry-api:version-restore", "post"): (VERSION, EMPTY, None),  # admins only
    ("registry-api:version-stage", "post"): (VERSION, lambda w: {"stage": "Staging"}, Level.EDIT),
    ("registry-api:alias", "put"): (
        lambda w: {**MODEL(w), "alias": "next"},
        lambda w: {"version": 1},
        Level.EDIT,
    ),
    ("registry-api:alias", "delete"): (lambda w: {**MODEL(w), "alias": "candidate"}, EMPTY, Level.EDIT),
    ("registry-api:policy", "put"): (MODEL, lambda w: {"required_approvals": 2}, None),  # admins only
    ("registry-api:forced-moves", "post"): (
        MODEL,
        lambda w: {"version": 1, "alias": "production", "reason": "incident"},
        None,  # admins only
    ),
    ("registry-api:promotion-requests", "post"): (
        NOBODY,
        lambda w: {"model": w.model.name, "version": 1, "alias": "production", "justification": "best"},
        Level.EDIT,
    ),
    # Withdrawing is the requester's, reviewing the policy's: no grant changes either (READ on the
    # model is still needed first: test_promotions.py walks both on a real request).
    ("registry-api:promotion-request-withdraw", "post"): (lambda w: {"request_id": 999999}, EMPTY, None),
    ("registry-api:promotion-request-reviews", "post"): (
        lambda w: {"request_id": 999999},
        lambda w: {"decision": "approve"},
        None,
    ),
    ("audit-api:verify", "post"): (NOBODY, EMPTY, None),
    # Webhooks are the admins' alone (tests/api/test_webhooks_api.py).
    ("registry-api:webhooks", "post"): (
        NOBODY,
        lambda w: {"name": "n", "url": "https://example.org/h", "events": ["promotion.requested"]},
        None,
    ),
    ("registry-api:webhook", "patch"): (lambda w: {"webhook_id": 999999}, lambda w: {"name": "x"}, None),
    ("registry-api:webhook", "delete"): (lambda w: {"webhook_id": 999999}, EMPTY, None),
    ("registry-api:webhook-rotate-secret", "post"): (lambda w: {"webhook_id": 999999}, EMPTY, None),
    ("registry-api:webhook-test", "post"): (lambda w: {"webhook_id": 999999}, EMPTY, None),
    ("registry-api:webhook-delivery-redeliver", "post"): (lambda w: {"delivery_id": 999999}, EMPTY, None),
}


# Decided by a role, but on a version looked up first, which a stranger may not read.
LOOKED_UP = {("registry-api:version-restore", "post")}


def test_every_write_endpoint_has_a_case():
    assert native_write_endpoints() == set(CASES)


def _send(world: World, persona: str, name: str, method: str) -> Any:
    kwargs, body, _ = CASES[(name, method)]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {world.tokens[persona]}")
    url = reverse(name, kwargs=kwargs(world))
    data = body(world)
    if isinstance(data, bytes):
        return client.generic(method.upper(), url, data, content_type="application/octet-stream")
    multipart = any(isinstance(value, SimpleUploadedFile) for value in data.values())
    return getattr(client, method)(url, data, format="multipart" if multipart else "json")


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize(("name", "method"), sorted(CASES))
def test_write_endpoint_obeys_the_permission(world, persona, name, method):
    assert_obeys(
        persona,
        CASES[(name, method)][2],
        lambda who: _send(world, who, name, method),
        looked_up=(name, method) in LOOKED_UP,
    )


# Reads ----------------------------------------------------------------------------------------


def native_read_endpoints() -> set[str]:
    """URL names of every native-API operation that answers GET."""
    api = next(p for p in get_resolver().url_patterns if str(p.pattern) == "api/")
    return {
        name
        for name, callback in _walk(api.url_patterns)
        if getattr(callback, "cls", None) is not None
        and any("get" in vars(cls) for cls in callback.cls.__mro__)
    }


# URL name → (path kwargs, query): the GETs that open one object (or several named runs), which
# need READ on it (a promotion request: on its model). Lists filter instead (test_rules.py,
# test_promotions.py); the rest name no experiment or model (the user, the audit trail).
READS: dict[str, tuple[Callable[[World], dict], Callable[[World], dict]]] = {
    "tracker-api:experiment": (EXP, EMPTY),
    "tracker-api:experiment-runs": (EXP, EMPTY),
    "tracker-api:experiment-permissions": (EXP, EMPTY),
    "tracker-api:experiment-permission": (lambda w: {**EXP(w), "username": "reader-user"}, EMPTY),
    "tracker-api:run": (RUN, EMPTY),
    "tracker-api:run-datasets": (RUN, EMPTY),
    "tracker-api:run-metrics": (RUN, EMPTY),
    "tracker-api:metric-history": (lambda w: {**RUN(w), "key": "acc"}, EMPTY),
    "tracker-api:metric-series": (lambda w: {**RUN(w), "key": "acc"}, EMPTY),
    "tracker-api:chart-series": (NOBODY, lambda w: {"run_ids": w.run.uuid, "keys": "acc"}),
    "tracker-api:artifacts": (RUN, EMPTY),
    "tracker-api:artifact": (lambda w: {**RUN(w), "path": "notes/readme.txt"}, EMPTY),
    "registry-api:model": (MODEL, EMPTY),
    "registry-api:model-permissions": (MODEL, EMPTY),
    "registry-api:model-permission": (lambda w: {**MODEL(w), "username": "reader-user"}, EMPTY),
    "registry-api:versions": (MODEL, EMPTY),
    "registry-api:version": (VERSION, EMPTY),
    "registry-api:aliases": (MODEL, EMPTY),
    "registry-api:alias": (lambda w: {**MODEL(w), "alias": "candidate"}, EMPTY),
    "registry-api:alias-history": (MODEL, EMPTY),
    "registry-api:holders": (MODEL, lambda w: {"at": "2020-01-01T00:00:00Z"}),
    "registry-api:policy": (MODEL, EMPTY),
    "registry-api:version-lineage": (VERSION, EMPTY),
    "registry-api:promotion-request": (lambda w: {"request_id": promotion_request(w).pk}, EMPTY),
    "tracker-api:upload": (lambda w: {"upload_id": upload(w).pk}, EMPTY),
}
NOT_ONE_OBJECT = {
    "api-me",
    "api-schema",
    "api-docs",
    "tracker-api:experiments",
    "tracker-api:runs",
    "tracker-api:uploads",
    "registry-api:models",
    "registry-api:promotion-requests",
    "audit-api:events",
    "audit-api:events-export",
    "audit-api:checkpoints",
    "audit-api:checkpoints-download",
    "audit-api:checkpoint",
    "audit-api:public-key",
    "audit-api:verify",
    "registry-api:webhooks",  # admins only, as are the two below
    "registry-api:webhook",
    "registry-api:webhook-deliveries",
}


def test_every_read_endpoint_is_classified():
    assert native_read_endpoints() == set(READS) | NOT_ONE_OBJECT
    assert not set(READS) & NOT_ONE_OBJECT


def _get(world: World, persona: str, name: str) -> Any:
    kwargs, query = READS[name]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {world.tokens[persona]}")
    response = client.get(reverse(name, kwargs=kwargs(world)), query(world))
    return materialised(response)


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("name", sorted(READS))
def test_read_endpoint_needs_read(world, persona, name):
    assert_obeys(persona, Level.READ, lambda who: _get(world, who, name))
