"""Webhooks over /api/v1 (admins): the secret only in the answers that make one, bad input named
by field, and a delivery log a script can read and retry."""

from __future__ import annotations

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from registry.models import Webhook, WebhookDelivery
from registry.services import create_registered_model
from tests.api.api_helpers import error

BODY = {
    "name": "ci",
    "url": "https://ci.example.org/hook",
    "events": ["promotion.applied", "promotion.requested"],
}


@pytest.fixture
def admin_api(api_client_for, admin):
    return api_client_for(admin)


def test_an_admin_adds_reads_changes_and_deletes_a_webhook(admin_api, contributor):
    created = admin_api.post("/api/v1/webhooks", BODY, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    hook = Webhook.objects.get()
    assert body["secret"] == hook.secret
    assert "no-store" in created["Cache-Control"]  # the secret is in this answer only
    # The catalogue's order, whatever order they were sent in.
    assert body["events"] == ["promotion.requested", "promotion.applied"]
    assert (body["model"], body["active"], body["created_by"]) == (None, True, "ada-admin")

    listed = admin_api.get("/api/v1/webhooks").json()["webhooks"]
    assert [w["name"] for w in listed] == ["ci"] and "secret" not in listed[0]
    assert "secret" not in admin_api.get(f"/api/v1/webhooks/{hook.pk}").json()

    create_registered_model(actor=contributor, name="churn")
    changed = admin_api.patch(
        f"/api/v1/webhooks/{hook.pk}", {"model": "churn", "active": False}, format="json"
    )
    assert changed.status_code == 200, changed.content
    assert (changed.json()["model"], changed.json()["active"], changed.json()["url"]) == (
        "churn", False, BODY["url"]
    )  # fmt: skip
    widened = admin_api.patch(f"/api/v1/webhooks/{hook.pk}", {"model": None}, format="json").json()
    assert widened["model"] is None

    rotation = admin_api.post(f"/api/v1/webhooks/{hook.pk}/rotate-secret")
    assert rotation.json()["secret"] != body["secret"] and "no-store" in rotation["Cache-Control"]
    assert admin_api.delete(f"/api/v1/webhooks/{hook.pk}").status_code == 204
    assert not Webhook.objects.exists()
    assert admin_api.get(f"/api/v1/webhooks/{hook.pk}").status_code == 404


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"url": "file:///etc/passwd"}, "url", "http:// or https://"),
        ({"events": ["run.created"]}, "events", "not a valid choice"),
        ({"events": []}, "events", "may not be empty"),
        ({"model": "nope"}, "model", "registered model 'nope' does not exist"),
        ({"name": ""}, "name", "may not be blank"),
    ],
)
def test_bad_input_names_the_field(admin_api, change, field, words):
    response = admin_api.post("/api/v1/webhooks", BODY | change, format="json")
    assert response.status_code == 400
    problem = error(response)
    assert problem["field"] == field and words in problem["message"], problem
    assert not Webhook.objects.exists()


def test_the_delivery_log_is_read_and_a_failed_delivery_retried(admin_api):
    hook = Webhook.objects.get(pk=admin_api.post("/api/v1/webhooks", BODY, format="json").json()["id"])
    event = AuditEvent.objects.latest("sequence")
    failed = WebhookDelivery.objects.create(
        webhook=hook,
        event=event,
        status="failed",
        attempts=8,
        response_status=503,
        next_attempt_at=timezone.now(),
    )
    [row] = admin_api.get(f"/api/v1/webhooks/{hook.pk}/deliveries").json()["deliveries"]
    assert (row["id"], row["event"], row["sequence"], row["status"], row["response_status"]) == (
        failed.pk, event.action, event.sequence, "failed", 503
    )  # fmt: skip
    retried = admin_api.post(f"/api/v1/webhook-deliveries/{failed.pk}/redeliver")
    assert retried.status_code == 200 and retried.json()["status"] == "pending"
    again = admin_api.post(f"/api/v1/webhook-deliveries/{failed.pk}/redeliver")
    assert again.status_code == 409
    assert error(again)["field"] == "delivery"
    assert admin_api.get(f"/api/v1/webhooks/{hook.pk}/deliveries?limit=0").status_code == 400


def test_readers_who_are_not_admins_are_refused(api_client_for, reviewer, admin_api):
    hook_id = admin_api.post("/api/v1/webhooks", BODY, format="json").json()["id"]
    client = api_client_for(reviewer)
    for path in ("/api/v1/webhooks", f"/api/v1/webhooks/{hook_id}", f"/api/v1/webhooks/{hook_id}/deliveries"):
        response = client.get(path)
        assert response.status_code == 403
        assert error(response)["message"] == "Seeing webhooks needs the admin role."


def test_a_test_delivery_over_the_api_says_how_the_receiver_answered(admin_api, receiver):
    hook_id = admin_api.post("/api/v1/webhooks", BODY | {"url": receiver.url}, format="json").json()["id"]
    receiver.answer(503)
    answer = admin_api.post(f"/api/v1/webhooks/{hook_id}/test").json()
    assert answer == {"delivered": False, "status": 503, "answer": "answered 503"}
    assert receiver.received[0].json["event"] == "webhook.ping"
