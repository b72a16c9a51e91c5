"""The webhook pages: admins only; a secret shown once; bad input named beside its field; the
delivery log, and sending a failed delivery again."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from registry.models import Webhook, WebhookDelivery
from registry.services import create_registered_model, create_webhook

HOSTILE = "<script>alert(1)</script>"
EVENTS = ["promotion.requested", "promotion.applied"]


@pytest.fixture
def hook(admin):
    return create_webhook(actor=admin, name="ci", url="https://ci.example.org/hook", events=EVENTS)


@pytest.mark.parametrize("persona", ["viewer", "contributor", "reviewer"])
def test_only_admins_see_the_pages_and_the_nav_link(client, request, persona, hook):
    client.force_login(request.getfixturevalue(persona))
    assert 'href="/webhooks/"' not in client.get(reverse("dashboard:experiment-list")).content.decode()
    for url in (reverse("dashboard:webhooks"), reverse("dashboard:webhook-detail", args=[hook.pk])):
        response = client.get(url)
        assert response.status_code == 403
        assert "needs the admin role" in response.content.decode()


def test_adding_a_webhook_shows_its_secret_once(admin_client, admin):
    data = {"name": "#ml-reviews", "url": "https://chat.example.org/hooks/abc", "model": "", "events": EVENTS}
    response = admin_client.post(reverse("dashboard:webhooks"), data)
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    page = response.content.decode()
    secret = re.search(r'id="webhook-secret-value">([\w-]+)</code>', page).group(1)
    hook = Webhook.objects.get()
    assert (hook.name, hook.url, hook.events, hook.model, hook.secret) == (
        "#ml-reviews", "https://chat.example.org/hooks/abc", EVENTS, None, secret
    )  # fmt: skip
    assert 'href="/webhooks/"' in page and 'aria-current="page">Webhooks' in page
    listed = admin_client.get(reverse("dashboard:webhooks")).content.decode()
    assert "#ml-reviews" in listed and "every model" in listed
    assert secret not in listed
    assert (
        secret not in admin_client.get(reverse("dashboard:webhook-detail", args=[hook.pk])).content.decode()
    )


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"url": "ftp://x.example.org/"}, "Payload URL: must be an http:// or https:// address"),
        ({"events": []}, "Events: This field is required."),
        ({"events": ["run.created"]}, "Events: Select a valid choice."),
        (
            {"model": "no-such-model"},
            "Registered model: registered model &#x27;no-such-model&#x27; does not exist",
        ),
        ({"name": ""}, "Name: This field is required."),
    ],
)
def test_bad_input_is_named_beside_its_field(admin_client, data, error):
    posted = {"name": "n", "url": "https://example.org/h", "model": "", "events": EVENTS} | data
    response = admin_client.post(reverse("dashboard:webhooks"), posted)
    assert response.status_code == 400
    assert error in response.content.decode()
    assert not Webhook.objects.exists()


def test_a_webhook_is_edited_for_one_model_and_paused(admin_client, admin, contributor, hook):
    model = create_registered_model(actor=contributor, name="churn")
    url = reverse("dashboard:webhook-detail", args=[hook.pk])
    data = {
        "name": "ci",
        "url": "https://ci.example.org/v2",
        "model": "churn",
        "events": ["model_version.created"],
    }
    response = admin_client.post(url, data, follow=True)
    assert "Webhook “ci” was saved." in response.content.decode()
    hook.refresh_from_db()  # "Active" was left unticked: paused
    assert (hook.url, hook.model, hook.events, hook.is_active) == (
        "https://ci.example.org/v2",
        model,
        ["model_version.created"],
        False,
    )  # fmt: skip
    data |= {"model": "", "is_active": "on"}
    admin_client.post(url, data)
    hook.refresh_from_db()
    assert (hook.model, hook.is_active) == (None, True)


def test_rotating_shows_the_new_secret_and_deleting_removes_it(admin_client, hook):
    old = hook.secret
    page = admin_client.post(reverse("dashboard:webhook-rotate", args=[hook.pk])).content.decode()
    hook.refresh_from_db()
    assert hook.secret != old and hook.secret in page
    response = admin_client.post(reverse("dashboard:webhook-delete", args=[hook.pk]), follow=True)
    assert "Webhook “ci” was deleted." in response.content.decode()
    assert not Webhook.objects.exists()


def test_the_delivery_log_escapes_the_receivers_answer_and_resends_a_failed_one(admin_client, hook):
    event = AuditEvent.objects.latest("sequence")
    delivery = WebhookDelivery.objects.create(
        webhook=hook,
        event=event,
        status=WebhookDelivery.Status.FAILED,
        attempts=8,
        response_status=500,
        last_error=f"HTTP 500: {HOSTILE}",
        last_attempt_at=timezone.now(),
        next_attempt_at=timezone.now(),
    )
    page = admin_client.get(reverse("dashboard:webhook-detail", args=[hook.pk])).content.decode()
    assert HOSTILE not in page and "&lt;script&gt;" in page
    assert f'id="delivery-{delivery.pk}"' in page and "Send again" in page
    response = admin_client.post(reverse("dashboard:delivery-redeliver", args=[delivery.pk]), follow=True)
    assert f"Delivery #{delivery.pk} will be sent again" in response.content.decode()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("pending", 0)
    response = admin_client.post(reverse("dashboard:delivery-redeliver", args=[delivery.pk]), follow=True)
    assert "is pending, not failed" in response.content.decode()


def test_hostile_names_are_escaped(admin_client, admin):
    create_webhook(actor=admin, name=HOSTILE, url="https://example.org/h", events=EVENTS)
    page = admin_client.get(reverse("dashboard:webhooks")).content.decode()
    assert HOSTILE not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_a_test_delivery_reports_the_receivers_answer(admin_client, admin, receiver):
    hook = create_webhook(actor=admin, name="ci", url=receiver.url, events=EVENTS)
    url = reverse("dashboard:webhook-ping", args=[hook.pk])
    page = admin_client.post(url, follow=True).content.decode()
    assert "The receiver answered HTTP 204 to a test delivery." in page
    receiver.answer(500)
    page = admin_client.post(url, follow=True).content.decode()
    assert "The receiver answered HTTP 500 to a test delivery: answered 500" in page
    receiver.close()  # nothing listens there any more
    page = admin_client.post(url, follow=True).content.decode()
    assert "The test delivery got no answer: ConnectionError" in page


def test_the_audit_page_shows_admins_webhook_changes_without_the_secret_or_path(admin, viewer, client):
    hook = create_webhook(
        actor=admin, name="chat", url="https://hooks.example.org/T0/B0/s3cr3t", events=EVENTS
    )
    client.force_login(admin)
    page = client.get(reverse("dashboard:audit"), {"action": "webhook.created"}).content.decode()
    assert "webhook.created" in page and "hooks.example.org" in page
    assert "s3cr3t" not in page and hook.secret not in page
    client.force_login(viewer)  # webhooks are the admins', and so are their events
    page = client.get(reverse("dashboard:audit"), {"action": "webhook.created"}).content.decode()
    assert "hooks.example.org" not in page
