"""Every page that writes, posted to as owner, editor, reader and stranger; and the Permissions
pages themselves (CSRF, who sees the forms, what a change records).

Every dashboard URL name is either in WRITES or in READS (`test_every_page_is_classified`), so
a new page has to say whether it writes, and a writing one gets walked here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import get_resolver, reverse

from accounts.permissions import Level
from audit.models import AuditEvent
from registry import selectors as registry_selectors
from registry import services as registry_services
from registry.permissions import set_model_permission
from tracker import services
from tracker.models import ExperimentPermission
from tracker.permissions import set_experiment_permission

from .conftest import (
    PERSONAS,
    World,
    _user,
    assert_obeys,
    logged_model,
    materialised,
    promotion_request,
    upload,
)

READS = {
    "experiment-list", "run-table", "runs", "run-export", "run-count", "run-columns", "run-detail",
    "artifact-download", "logged-model-artifact-download", "compare", "chart-series", "param-importance",
    "registry", "model-detail", "model-timeline", "version-detail",
    "version-lineage", "review-queue", "request-detail", "audit", "audit-export", "audit-checkpoints",
    "audit-checkpoint", "audit-public-key", "upload-list", "upload-detail", "upload-status",
    "webhooks", "webhook-detail",
}  # fmt: skip
# Reading pages that show no one experiment or model: lists filter (test_rules.py; the review
# queue: test_promotions.py; uploads: test_rules.py), the rest are the audit trail.
NOT_ONE_OBJECT = {
    "experiment-list", "runs", "run-export", "run-count", "registry", "review-queue",
    "audit", "audit-export", "audit-checkpoints", "audit-checkpoint", "audit-public-key", "upload-list",
    "webhooks", "webhook-detail",  # admins only (test_dashboard_webhooks.py)
}  # fmt: skip
EXP = lambda w: [w.experiment.pk]  # noqa: E731
RUN = lambda w, action: [w.run.uuid, action]  # noqa: E731
NAME = lambda w: [w.model.name]  # noqa: E731


def _saved_view(world: World) -> list[int]:
    view = services.save_view(actor=world.user("owner"), experiment=world.experiment, name="mine", query="")
    return [view.pk]


# (name, variant) → (URL args, POST data, level needed; None: a role, the policy or the requester decides)
Case = tuple[Callable[[World], list], Callable[[World], dict], Level | None]
WRITES: dict[tuple[str, str], Case] = {
    ("saved-view-save", ""): (EXP, lambda w: {"name": "v", "query": ""}, Level.EDIT),
    ("saved-view-delete", ""): (_saved_view, lambda w: {}, Level.MANAGE),  # the owner's view
    ("run-edit", "rename"): (lambda w: RUN(w, "rename"), lambda w: {"name": "renamed"}, Level.EDIT),
    ("run-edit", "note"): (lambda w: RUN(w, "note"), lambda w: {"note": "n"}, Level.EDIT),
    ("run-edit", "tag"): (lambda w: RUN(w, "tag"), lambda w: {"key": "k", "value": "v"}, Level.EDIT),
    ("run-edit", "untag"): (lambda w: RUN(w, "untag"), lambda w: {"key": "team"}, Level.EDIT),
    ("run-edit", "delete"): (lambda w: RUN(w, "delete"), lambda w: {}, Level.MANAGE),
    ("run-edit", "restore"): (lambda w: RUN(w, "restore"), lambda w: {}, Level.MANAGE),
    ("experiment-edit", "delete"): (lambda w: [w.experiment.pk, "delete"], lambda w: {}, Level.MANAGE),
    ("experiment-edit", "restore"): (lambda w: [w.experiment.pk, "restore"], lambda w: {}, Level.MANAGE),
    ("experiment-permissions", ""): (
        EXP,
        lambda w: {"username": "stranger-user", "permission": "READ"},
        Level.MANAGE,
    ),
    ("model-permissions", ""): (NAME, lambda w: {"username": "reader-user", "remove": "on"}, Level.MANAGE),
    ("model-policy", ""): (NAME, lambda w: {"required_approvals": 2, "review_role": "reviewer"}, None),
    ("version-request", ""): (
        lambda w: [w.model.name, 1],
        lambda w: {"target": "alias:production", "justification": "best so far"},
        Level.EDIT,
    ),
    ("version-force", ""): (
        lambda w: [w.model.name, 1],
        lambda w: {"force-target": "alias:production"},
        None,
    ),
    ("request-review", ""): (lambda w: [999999], lambda w: {"decision": "approve"}, None),
    ("request-withdraw", ""): (lambda w: [999999], lambda w: {}, None),
    ("audit-check", ""): (lambda w: [], lambda w: {}, None),
    ("settings", ""): (lambda w: [], lambda w: {"name": "t"}, None),
    ("token-revoke", ""): (lambda w: [999999], lambda w: {}, None),
    ("webhooks", ""): (
        lambda w: [],
        lambda w: {"name": "n", "url": "https://example.org/h", "events": ["promotion.requested"]},
        None,
    ),
    ("webhook-detail", ""): (lambda w: [999999], lambda w: {"name": "n"}, None),
    ("webhook-rotate", ""): (lambda w: [999999], lambda w: {}, None),
    ("webhook-delete", ""): (lambda w: [999999], lambda w: {}, None),
    ("webhook-ping", ""): (lambda w: [999999], lambda w: {}, None),
    ("delivery-redeliver", ""): (lambda w: [999999], lambda w: {}, None),
    ("upload-new", ""): (
        lambda w: [],
        lambda w: {
            "file": SimpleUploadedFile("m.csv", b"key,step,value\nloss,1,0.5\n"),
            "run_id": w.run.uuid,
        },
        Level.EDIT,
    ),
}


def test_every_page_is_classified():
    dashboard = get_resolver().namespace_dict["dashboard"][1]
    names = {name for name in dashboard.reverse_dict if isinstance(name, str)}
    assert names == READS | {name for name, _ in WRITES}


# Decided by a role, but on a version looked up first, which a stranger may not read.
LOOKED_UP = {("version-force", "")}


def _post(world: World, persona: str, key: tuple[str, str]) -> Any:
    args, data, _ = WRITES[key]
    client = Client()
    client.force_login(world.user(persona))
    return client.post(reverse(f"dashboard:{key[0]}", args=args(world)), data(world))


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("key", sorted(WRITES), ids=lambda key: "-".join(filter(None, key)))
def test_page_write_obeys_the_permission(world, persona, key):
    assert_obeys(persona, WRITES[key][2], lambda who: _post(world, who, key), looked_up=key in LOOKED_UP)


def test_the_permissions_page_lists_grants_and_offers_forms_only_to_managers(world):
    url = reverse("dashboard:experiment-permissions", args=[world.experiment.pk])
    pages = {}
    for persona in ("owner", "reader"):
        client = Client()
        client.force_login(world.user(persona))
        pages[persona] = client.get(url).content.decode()
    assert "editor-user" in pages["reader"] and "reader-user" in pages["reader"]
    assert 'id="grant-form"' in pages["owner"] and 'id="grant-form"' not in pages["reader"]
    assert "style=" not in pages["owner"]  # nothing inline for the coming CSP to refuse
    stranger = Client()
    stranger.force_login(world.user("stranger"))
    assert stranger.get(url).status_code == 403


def test_a_change_on_the_permissions_page_needs_the_csrf_token_and_is_audited(world):
    url = reverse("dashboard:model-permissions", args=[world.model.name])
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.user("owner"))
    assert client.post(url, {"username": "stranger-user", "permission": "EDIT"}).status_code == 403
    page = client.get(url)
    token = page.cookies["csrftoken"].value
    response = client.post(
        url, {"username": "stranger-user", "permission": "EDIT", "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 302
    event = AuditEvent.objects.filter(action="registered_model.permission_set").latest("sequence")
    assert (event.actor_name, event.after) == (
        "owner-user",
        {"username": "stranger-user", "permission": "EDIT"},
    )


def test_the_experiment_permissions_page_changes_and_removes_a_grant(world):
    url = reverse("dashboard:experiment-permissions", args=[world.experiment.pk])
    client = Client()
    client.force_login(world.user("owner"))
    client.post(url, {"username": "reader-user", "permission": "MANAGE"})
    grant = ExperimentPermission.objects.get(experiment=world.experiment, user=world.user("reader"))
    assert grant.level_name == "MANAGE"
    client.post(url, {"username": "reader-user", "remove": "on"})
    assert not ExperimentPermission.objects.filter(
        experiment=world.experiment, user=world.user("reader")
    ).exists()
    response = client.post(url, {"username": "nobody-here", "permission": "READ"}, follow=True)
    assert "no user named" in response.content.decode()


def _second_run(world: World) -> str:
    """Another run of the guarded experiment: the compare page needs two."""
    run = services.start_run(actor=world.user("owner"), experiment=world.experiment, name="second")
    return str(run.uuid)


# Reading page → (URL args, query): every page showing one experiment, run or model (or several
# runs) needs READ on each; a page that also writes is read here with GET.
PAGE_READS: dict[str, tuple[Callable[[World], list], Callable[[World], dict]]] = {
    "run-table": (EXP, lambda w: {}),
    "run-columns": (lambda w: [], lambda w: {"experiments": [w.experiment.pk], "q": "a"}),
    "run-detail": (lambda w: [w.run.uuid], lambda w: {}),
    "artifact-download": (lambda w: [w.run.uuid, "notes/readme.txt"], lambda w: {}),
    "logged-model-artifact-download": (
        lambda w: [w.run.uuid, logged_model(w).model_id, "MLmodel"],
        lambda w: {},
    ),
    "compare": (lambda w: [], lambda w: {"runs": [w.run.uuid, _second_run(w)]}),
    "chart-series": (lambda w: [], lambda w: {"runs": [w.run.uuid], "keys": ["acc"]}),
    "param-importance": (lambda w: [], lambda w: {"runs": [w.run.uuid], "metric": "acc"}),
    "model-detail": (NAME, lambda w: {}),
    "model-timeline": (NAME, lambda w: {}),
    "version-detail": (lambda w: [w.model.name, 1], lambda w: {}),
    "version-lineage": (lambda w: [w.model.name, 1], lambda w: {}),
    "experiment-permissions": (EXP, lambda w: {}),
    "model-permissions": (NAME, lambda w: {}),
    "request-detail": (lambda w: [promotion_request(w).pk], lambda w: {}),
    "upload-detail": (lambda w: [upload(w).pk], lambda w: {}),
    "upload-status": (lambda w: [upload(w).pk], lambda w: {}),
}


def test_every_reading_page_is_classified():
    assert set(PAGE_READS) - {name for name, _ in WRITES} == READS - NOT_ONE_OBJECT
    assert not set(PAGE_READS) & NOT_ONE_OBJECT


def _get(world: World, persona: str, name: str) -> Any:
    args, query = PAGE_READS[name]
    client = Client()
    client.force_login(world.user(persona))
    response = client.get(reverse(f"dashboard:{name}", args=args(world)), query(world))
    return materialised(response)


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("name", sorted(PAGE_READS))
def test_page_read_needs_read(world, persona, name):
    assert_obeys(persona, Level.READ, lambda who: _get(world, who, name))


def test_comparing_a_readable_run_with_an_unreadable_one_is_refused(world):
    other = services.create_experiment(actor=world.user("stranger"), name="private")
    hidden = services.start_run(actor=world.user("stranger"), experiment=other, name="hidden")
    client = Client()
    client.force_login(world.user("reader"))
    for name, query in (
        ("compare", {"runs": [world.run.uuid, hidden.uuid]}),
        ("chart-series", {"runs": [world.run.uuid, hidden.uuid], "keys": ["acc"]}),
    ):
        response = client.get(reverse(f"dashboard:{name}"), query)
        assert response.status_code == 403, (name, response.content[:300])


def test_the_request_form_is_offered_only_to_who_may_edit_the_model(world):
    """A reviewer with READ saw the form and got the 403 page on sending it."""
    url = reverse("dashboard:version-detail", args=[world.model.name, world.version.version])
    for persona, offered in (("reader", False), ("editor", True), ("owner", True)):
        client = Client()
        client.force_login(world.user(persona))
        assert ('id="request-form"' in client.get(url).content.decode()) is offered, persona


def test_model_pages_show_a_source_runs_evidence_only_to_its_experiments_readers(world):
    """READ on a model opens its versions, not the experiment their runs were logged to: the
    model, version, "why this model?" and request pages keep that run's data out."""
    model_only = _user("model-only")
    set_model_permission(actor=world.user("owner"), model=world.model, grantee=model_only, level=Level.READ)
    model_only.__dict__.pop("_labledger_levels", None)
    pages = {
        "model-detail": [world.model.name],
        "version-detail": [world.model.name, 1],
        "version-lineage": [world.model.name, 1],
        "request-detail": [promotion_request(world).pk],
    }
    for persona, user in (("model-only", model_only), ("reader", world.user("reader"))):
        client = Client()
        client.force_login(user)
        for name, args in pages.items():
            response = client.get(reverse(f"dashboard:{name}", args=args))
            page = response.content.decode()
            assert response.status_code == 200, (persona, name)
            hidden = "evidence-hidden" in page
            assert hidden == (persona == "model-only"), (persona, name)
            if name == "version-lineage":
                assert ("notes/readme.txt" in page) == (persona == "reader")
            if name == "version-detail":
                assert ("Metrics of the source run" in page) == (persona == "reader")


def test_exporting_runs_of_an_unreadable_experiment_is_refused_as_the_run_table_is(world):
    client = Client()
    client.force_login(world.user("stranger"))
    table = client.get(reverse("dashboard:run-table", args=[world.experiment.pk]))
    export = client.get(reverse("dashboard:run-export"), {"experiments": world.experiment.pk})
    assert (table.status_code, export.status_code) == (403, 403)


def test_a_run_page_names_only_the_registered_models_the_user_may_read(world):
    """READ on an experiment opens its runs, not the models registered from them: the run page's
    "Registered as" and its logged models' versions leave out a model the user may not read."""
    owner = world.user("owner")
    closed = registry_services.create_registered_model(actor=owner, name="closed-model")
    registry_services.create_model_version(
        actor=owner, model=closed, run=world.run, logged_model=logged_model(world)
    )
    experiment_only = _user("experiment-only")
    set_experiment_permission(
        actor=owner, experiment=world.experiment, grantee=experiment_only, level=Level.READ
    )
    experiment_only.__dict__.pop("_labledger_levels", None)
    for user, shown in ((experiment_only, False), (owner, True)):
        client = Client()
        client.force_login(user)
        page = client.get(reverse("dashboard:run-detail", args=[world.run.uuid])).content.decode()
        assert ("closed-model" in page) is shown, user
        assert ("guarded-model" in page) is shown, user  # the world's model: closed to her too
    assert registry_selectors.versions_of_run(run=world.run, user=experiment_only) == []
