"""The audit trail shows a user the events about what they may read: an experiment closed to them
(by the NO_PERMISSIONS default or by a grant) hides its own events and those of its runs, logged
models, uploads and saved views; a closed model hides its versions' and promotions' events.
Events about no such object stay everyone's, except the admins' own (webhooks, account security),
and admins read the whole trail."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.permissions import Level
from accounts.roles import Role
from accounts.services import assign_role
from audit.sealing import seal_events
from audit.services import record_event
from registry.services import create_webhook
from tests.factories import UserFactory
from tracker import services
from tracker.permissions import set_experiment_permission
from tracker.services import uploads

from .conftest import World, promotion_request, upload

pytestmark = pytest.mark.django_db


def _objects_seen(client: Any) -> set[tuple[str, str]]:
    events, after = [], 0
    while after is not None:
        body = client.get(reverse("audit-api:events"), {"after_sequence": after, "limit": 500}).json()
        events += body["events"]
        after = body["next_after_sequence"]
    return {(event["object_type"], event["object_id"]) for event in events}


def _guarded_objects(world: World) -> set[tuple[str, str]]:
    view = services.save_view(actor=world.user("owner"), experiment=world.experiment, name="mine", query="")
    promotion_request(world)
    ingested = upload(world)
    uploads.ingest_upload(upload_id=ingested.pk)
    return {
        ("tracker.experiment", str(world.experiment.pk)),
        ("tracker.run", world.run.uuid),
        ("tracker.loggedmodel", world.logged_model.model_id),
        ("tracker.savedview", view.audit_id),
        ("tracker.bulkupload", str(ingested.pk)),
        ("registry.registeredmodel", world.model.audit_id),
        ("registry.modelversion", world.version.audit_id),
    }


def test_the_trail_leaves_out_events_of_objects_the_user_may_not_read(world, api_client_for):
    guarded = _guarded_objects(world)
    admin = UserFactory(username="audit-admin")
    assign_role(user=admin, role=Role.ADMIN)

    assert guarded <= _objects_seen(api_client_for(world.user("reader")))
    assert guarded <= _objects_seen(api_client_for(admin))
    stranger_sees = _objects_seen(api_client_for(world.user("stranger")))
    assert not guarded & stranger_sees
    assert ("auth.user", "audit-admin") in stranger_sees  # about no experiment or model: everyone's


def test_events_of_objects_gone_or_named_the_old_way_stay_hidden_from_a_closed_out_user(
    world, api_client_for, contributor
):
    """The rule fails closed: a purged run, a deleted saved view, a model event recorded under
    the model's name (as older events were) and a webhook scoped to the model stay hidden."""
    owner, admin = world.user("owner"), UserFactory(username="audit-admin")
    assign_role(user=admin, role=Role.ADMIN)
    view = services.save_view(actor=owner, experiment=world.experiment, name="gone", query="")
    services.delete_view(actor=owner, view=view)
    doomed = services.start_run(actor=owner, experiment=world.experiment, name="doomed")
    services.delete_run(actor=owner, run=doomed)
    services.purge_deleted_runs(actor=admin, older_than=timedelta(0))
    record_event(
        actor=owner, action="registered_model.created", object_type="registry.registeredmodel",
        object_id=world.model.name, after={"justification": "secret"},
    )  # fmt: skip
    hook = create_webhook(
        actor=admin,
        name="hook",
        url="https://example.org/h",
        events=["promotion.requested"],
        model=world.model,
    )
    gone = {
        ("tracker.savedview", view.audit_id),
        ("tracker.run", doomed.uuid),
        ("registry.registeredmodel", world.model.name),
        ("registry.webhook", hook.audit_id),
    }
    assert gone <= _objects_seen(api_client_for(admin))
    assert not gone & _objects_seen(api_client_for(world.user("stranger")))


def test_with_nothing_closed_the_trail_adds_no_subquery(api_client_for, viewer, settings):
    """The usual case (the READ default, no closing grant) costs the page nothing."""
    settings.DEFAULT_PERMISSION = "READ"
    with CaptureQueriesContext(connection) as queries:
        assert api_client_for(viewer).get(reverse("audit-api:events")).status_code == 200
    events = [q["sql"] for q in queries.captured_queries if "audit_auditevent" in q["sql"]]
    assert events and not any("IN (SELECT" in sql.upper() for sql in events)


def test_a_grant_closing_one_experiment_hides_its_events_under_a_reading_default(
    world, api_client_for, settings
):
    """With the READ default, a NO_PERMISSIONS grant closes that experiment's events too."""
    settings.DEFAULT_PERMISSION = "READ"
    other = services.create_experiment(actor=world.user("owner"), name="open")
    closed = UserFactory(username="closed-out")
    assign_role(user=closed, role=Role.VIEWER)
    set_experiment_permission(
        actor=world.user("owner"), experiment=world.experiment, grantee=closed, level=Level.NO_PERMISSIONS
    )
    seen = _objects_seen(api_client_for(closed))
    assert ("tracker.run", world.run.uuid) not in seen
    assert ("tracker.experiment", str(world.experiment.pk)) not in seen
    assert ("tracker.experiment", str(other.pk)) in seen


def test_the_audit_page_and_the_export_follow_the_same_rule(world):
    promotion_request(world)
    seal_events()  # the export holds sealed events, as the sealer leaves them within seconds
    client = Client()
    client.force_login(world.user("stranger"))
    page = client.get(reverse("dashboard:audit")).content.decode()
    export = b"".join(client.get(reverse("dashboard:audit-export")).streaming_content).decode()
    for text in (page, export):
        assert world.run.uuid not in text and "promotion.requested" not in text
    client.force_login(world.user("reader"))
    export = b"".join(client.get(reverse("dashboard:audit-export")).streaming_content).decode()
    assert world.run.uuid in export and "promotion.requested" in export


def test_webhook_and_account_security_events_are_the_admins_alone(world, api_client_for, settings):
    """A webhook's events name its URL's host (often an internal one), a lockout's the client's
    address and the account under attack: no one but an admin reads them, not even a reader of
    everything else, through the API (filtered or not), the audit page or the export."""
    settings.DEFAULT_PERMISSION = "READ"  # nothing closed: only the admins' rule hides them
    admin = UserFactory(username="audit-admin")
    assign_role(user=admin, role=Role.ADMIN)
    hook = create_webhook(
        actor=admin, name="ops-hook", url="https://deploy.internal.example/h", events=["promotion.requested"]
    )
    record_event(
        actor=None, action="user.login_locked_out", object_type="auth.user", object_id="reader-user",
        after={"ip_address": "10.20.30.40", "path": "/accounts/login/", "failures": 5},
    )  # fmt: skip
    record_event(
        actor=admin, action="user.login_unlocked", object_type="auth.user", object_id="reader-user",
        after={"attempts_removed": 5},
    )  # fmt: skip
    seal_events()
    secrets = (
        "deploy.internal.example",
        "ops-hook",
        "10.20.30.40",
        "user.login_locked_out",
        "user.login_unlocked",
    )
    for user, shown in ((world.user("reader"), False), (world.user("owner"), False), (admin, True)):
        api = api_client_for(user)
        answers = [
            api.get(reverse("audit-api:events"), {"object_type": "registry.webhook"}).content,
            api.get(reverse("audit-api:events"), {"action": "user.login_locked_out"}).content,
            api.get(reverse("audit-api:events"), {"limit": 500}).content,
            b"".join(api.get(reverse("audit-api:events-export")).streaming_content),
        ]
        client = Client()
        client.force_login(user)
        answers += [
            client.get(reverse("dashboard:audit"), {"object_type": "registry.webhook"}).content,
            client.get(reverse("dashboard:audit")).content,
            b"".join(client.get(reverse("dashboard:audit-export")).streaming_content),
        ]
        text = b" ".join(answers).decode()
        for secret in secrets:
            assert (secret in text) is shown, (user.username, secret)
    assert ("registry.webhook", hook.audit_id) in _objects_seen(api_client_for(admin))
    assert ("auth.user", "audit-admin") in _objects_seen(api_client_for(world.user("reader")))
