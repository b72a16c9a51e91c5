"""Webhooks: who may manage them, what they are told (from the sealed audit chain), how a
receiver checks a delivery, and what happens when it does not answer."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from audit.models import AuditEvent
from audit.verification import verify_chain
from config.exceptions import Conflict, InvalidInput, PermissionDenied
from registry.models import Webhook, WebhookDelivery
from registry.services import create_model_version, create_registered_model, review_promotion, set_alias
from registry.services.webhook_delivery import dispatch_webhooks, retry_delay
from registry.services.webhooks import (
    create_webhook,
    delete_webhook,
    redeliver,
    rotate_webhook_secret,
    update_webhook,
)
from tracker.services import start_run

REVIEW_EVENTS = ["promotion.requested", "promotion.approved", "promotion.applied"]


@pytest.fixture
def hook(admin, receiver):
    return create_webhook(actor=admin, name="#ml-reviews", url=receiver.url, events=REVIEW_EVENTS)


def _delivery(webhook: Webhook) -> WebhookDelivery:
    return WebhookDelivery.objects.get(webhook=webhook)


def test_only_admins_manage_webhooks(contributor, reviewer, receiver, admin):
    for user in (contributor, reviewer):
        with pytest.raises(PermissionDenied, match="needs the admin role"):
            create_webhook(actor=user, name="x", url=receiver.url, events=REVIEW_EVENTS)
    hook = create_webhook(actor=admin, name="x", url=receiver.url, events=REVIEW_EVENTS)
    with pytest.raises(PermissionDenied):
        update_webhook(actor=reviewer, webhook=hook, is_active=False)
    with pytest.raises(PermissionDenied):
        rotate_webhook_secret(actor=contributor, webhook=hook)
    with pytest.raises(PermissionDenied):
        delete_webhook(actor=reviewer, webhook=hook)
    assert Webhook.objects.get().is_active


@pytest.mark.parametrize(
    ("values", "field", "words"),
    [
        ({"url": "ftp://example.org/x"}, "url", "http:// or https://"),
        ({"url": "https:///no-host"}, "url", "with a host"),
        ({"url": "http://example.org:port/"}, "url", "not a valid address"),
        ({"url": "https://example.org/" + "a" * 2000}, "url", "the limit is 2000"),
        ({"name": "  "}, "name", "must not be empty"),
        ({"events": []}, "events", "at least one event"),
        ({"events": ["run.created"]}, "events", "'run.created' is not an event"),
        ({"events": "promotion.requested"}, "events", "must be a list"),
    ],
)
def test_bad_input_names_the_field_and_stores_nothing(admin, values, field, words):
    arguments = {"name": "hook", "url": "https://example.org/hook", "events": REVIEW_EVENTS} | values
    with pytest.raises(InvalidInput, match=words) as error:
        create_webhook(actor=admin, **arguments)
    assert error.value.field == field
    assert not Webhook.objects.exists()


def test_a_promotion_is_delivered_signed_with_its_audit_event(
    hook, receiver, open_request, reviewer, requester
):
    review_promotion(actor=reviewer, request=open_request, decision="approve", comment="Looks right.")
    result = dispatch_webhooks()
    assert (result.queued, result.delivered, result.failed_attempts) == (3, 3, 0)
    assert [r.json["event"] for r in receiver.received] == REVIEW_EVENTS

    requested = receiver.received[0]
    body = requested.json
    event = AuditEvent.objects.get(action="promotion.requested")
    assert body["audit"] == {
        "sequence": event.sequence, "hash": event.hash, "previous_hash": event.previous_hash
    }  # fmt: skip
    assert event.hash is not None  # only sealed events are sent
    assert body["actor"] == requester.username
    assert body["after"]["justification"] == "Better F1 on the holdout."
    assert body["after"]["request"] == open_request.pk
    assert body["links"]["request"] == f"http://127.0.0.1:8000/reviews/{open_request.pk}/"
    assert body["links"]["version"] == "http://127.0.0.1:8000/registry/digits/versions/2/"
    assert body["text"] == (
        "A promotion was requested: digits version 2 → production, by rita-requester "
        f"(http://127.0.0.1:8000/reviews/{open_request.pk}/)"
    )
    headers = requested.headers
    assert headers["X-LabLedger-Event"] == "promotion.requested"
    assert headers["X-LabLedger-Delivery"] == str(WebhookDelivery.objects.get(event=event).pk)
    signed = headers["X-LabLedger-Timestamp"].encode() + b"." + requested.body
    expected = hmac.new(hook.secret.encode(), signed, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-LabLedger-Signature"], f"sha256={expected}")
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"delivered"}


def test_each_event_is_delivered_once(hook, receiver, open_request):
    dispatch_webhooks()
    dispatch_webhooks()
    assert len(receiver.received) == 1
    assert WebhookDelivery.objects.count() == 1


def test_events_before_the_webhook_existed_are_not_sent(admin, receiver, open_request):
    create_webhook(actor=admin, name="late", url=receiver.url, events=REVIEW_EVENTS)
    assert dispatch_webhooks().queued == 0
    assert receiver.received == []


def test_a_webhook_hears_only_its_events_and_its_model(admin, contributor, experiment, receiver):
    churn = create_registered_model(actor=contributor, name="churn")
    other = create_registered_model(actor=contributor, name="other")
    events = ["model_version.created", "model_alias.set"]
    hook = create_webhook(actor=admin, name="churn", url=receiver.url, events=events, model=churn)
    run = start_run(actor=contributor, experiment=experiment, name="r")
    mine = create_model_version(actor=contributor, model=churn, run=run)
    create_model_version(actor=contributor, model=other, run=run)
    set_alias(actor=contributor, model=churn, alias="candidate", version=mine)
    set_alias(actor=contributor, model=other, alias="candidate", version=other.versions.get())
    dispatch_webhooks()
    assert [(r.json["event"], r.json["after"]["model"]) for r in receiver.received] == [
        ("model_version.created", "churn"),
        ("model_alias.set", "churn"),
    ]
    assert receiver.received[0].json["text"] == (  # a new version has moved to no label
        "A model version was registered: churn version 1, by carl-contributor "
        "(http://127.0.0.1:8000/registry/churn/versions/1/)"
    )
    assert receiver.received[1].json["text"] == (
        "An alias was pointed at a version: churn version 1 → candidate, by carl-contributor "
        "(http://127.0.0.1:8000/registry/churn/versions/1/)"
    )
    update_webhook(actor=admin, webhook=hook, all_models=True)
    create_model_version(actor=contributor, model=other, run=run)
    dispatch_webhooks()
    assert receiver.received[-1].json["after"]["model"] == "other"


def test_a_failing_receiver_is_retried_then_given_up_on(hook, receiver, open_request, admin):
    receiver.answer(500, 500)
    with override_settings(WEBHOOK_MAX_ATTEMPTS=2):
        dispatch_webhooks()
        delivery = _delivery(hook)
        assert (delivery.status, delivery.attempts, delivery.response_status) == ("pending", 1, 500)
        assert delivery.last_error == "HTTP 500: answered 500"
        assert delivery.next_attempt_at > timezone.now() + timedelta(seconds=25)
        dispatch_webhooks()  # not due yet: nothing is sent
        assert len(receiver.received) == 1
        WebhookDelivery.objects.update(next_attempt_at=timezone.now())
        dispatch_webhooks()
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts) == ("failed", 2)
    with pytest.raises(Conflict, match="not failed"):
        redeliver(actor=admin, delivery=WebhookDelivery.objects.create(
            webhook=hook, event=AuditEvent.objects.first(), next_attempt_at=timezone.now()
        ))  # fmt: skip
    redeliver(actor=admin, delivery=delivery)
    dispatch_webhooks()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("delivered", 1, "")


def test_a_redirect_is_not_followed_and_counts_as_a_failure(hook, receiver, open_request):
    receiver.answer(302)
    dispatch_webhooks()
    delivery = _delivery(hook)
    assert (delivery.status, delivery.response_status) == ("pending", 302)
    assert len(receiver.received) == 1


def test_an_unreachable_receiver_is_recorded(admin, receiver, open_request, requester, trained_versions):
    receiver.close()  # nothing listens there any more
    hook = create_webhook(actor=admin, name="gone", url=receiver.url, events=["promotion.withdrawn"])
    from registry.services import withdraw_promotion

    withdraw_promotion(actor=requester, request=open_request)
    dispatch_webhooks()
    delivery = _delivery(hook)
    assert delivery.response_status is None
    assert delivery.last_error.startswith("ConnectionError")


def test_retry_delays_double_up_to_an_hour():
    assert [retry_delay(n).total_seconds() for n in (1, 2, 3, 8, 20)] == [30, 60, 120, 3600, 3600]


def test_a_paused_webhook_resumes_from_now(hook, receiver, admin, open_request, reviewer):
    update_webhook(actor=admin, webhook=hook, is_active=False)
    review_promotion(actor=reviewer, request=open_request, decision="approve", comment="ok")
    assert dispatch_webhooks().queued == 0
    update_webhook(actor=admin, webhook=hook, is_active=True)
    assert dispatch_webhooks().queued == 0
    assert receiver.received == []


def test_the_trail_records_webhooks_without_their_secret_or_path(admin, receiver):
    hook = create_webhook(
        actor=admin, name="chat", url="https://hooks.example.org/services/T0/B0/s3cr3t", events=REVIEW_EVENTS
    )
    old_secret = hook.secret
    hook = rotate_webhook_secret(actor=admin, webhook=hook)
    assert hook.secret != old_secret and len(hook.secret) >= 40
    update_webhook(actor=admin, webhook=hook, events=["promotion.requested"])
    delete_webhook(actor=admin, webhook=hook)
    events = list(AuditEvent.objects.filter(action__startswith="webhook.").order_by("sequence"))
    assert [e.action for e in events] == [
        "webhook.created", "webhook.secret_rotated", "webhook.updated", "webhook.deleted"
    ]  # fmt: skip
    assert events[0].after["host"] == "hooks.example.org"
    assert events[2].after["events"] == ["promotion.requested"]
    for event in events:
        text = str(event.before) + str(event.after)
        assert "s3cr3t" not in text and old_secret not in text and hook.secret not in text
    assert not Webhook.objects.exists()
    assert verify_chain().ok


@override_settings(WEBHOOK_ALLOWED_NETWORKS=[])
@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://127.0.0.1:8000/admin/", "127.0.0.1"),
        ("http://localhost:8000/", "localhost (127.0.0.1)"),
        ("http://[::1]/", "::1"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254"),
        ("http://10.1.2.3/hook", "10.1.2.3"),
        ("http://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1 (127.0.0.1)"),
        ("http://[64:ff9b::a9fe:a9fe]/", "64:ff9b::a9fe:a9fe (169.254.169.254)"),
        ("http://[64:ff9b:1::1]/", "64:ff9b:1::1"),
    ],
)
def test_a_webhook_cannot_point_at_a_private_or_local_address(admin, url, shown):
    """Its answer comes back to the admin: an address on the server's own machine or network
    would let the webhook read what answers there."""
    with pytest.raises(InvalidInput) as error:
        create_webhook(actor=admin, name="hook", url=url, events=REVIEW_EVENTS)
    assert (error.value.field, error.value.message) == (
        "url",
        f"{shown} is not a public address; webhooks send only to public addresses and to the networks "
        "listed in WEBHOOK_ALLOWED_NETWORKS",
    )
    assert not Webhook.objects.exists()


def test_an_address_refused_when_sent_to_is_not_called(hook, receiver, admin):
    """A host name is resolved when a delivery is sent, so the rule holds then too: here the
    receiver's network stops being allowed after the webhook was set."""
    from registry.services import ping_webhook

    with override_settings(WEBHOOK_ALLOWED_NETWORKS=[]):
        result = ping_webhook(actor=admin, webhook=hook)
    assert (result.delivered, result.status) == (False, None)
    assert result.answer.startswith("127.0.0.1 is not a public address")
    assert receiver.received == []
    with override_settings(WEBHOOK_ALLOWED_NETWORKS=["127.0.0.0/8"]):
        assert ping_webhook(actor=admin, webhook=hook).delivered


def test_a_test_delivery_is_signed_and_reports_the_answer_without_recording(hook, receiver, admin, reviewer):
    from registry.services import ping_webhook

    result = ping_webhook(actor=admin, webhook=hook)
    assert (result.delivered, result.status) == (True, 204)
    [ping] = receiver.received
    assert ping.headers["X-LabLedger-Event"] == "webhook.ping"
    assert ping.json["text"] == "Lab Ledger: the webhook “#ml-reviews” reaches this receiver."
    signed = ping.headers["X-LabLedger-Timestamp"].encode() + b"." + ping.body
    expected = hmac.new(hook.secret.encode(), signed, hashlib.sha256).hexdigest()
    assert ping.headers["X-LabLedger-Signature"] == f"sha256={expected}"
    receiver.answer(410)
    assert ping_webhook(actor=admin, webhook=hook).status == 410
    assert not WebhookDelivery.objects.exists()
    with pytest.raises(PermissionDenied, match="Testing a webhook needs the admin role"):
        ping_webhook(actor=reviewer, webhook=hook)


def test_chat_commands_in_a_model_name_are_escaped_in_text_but_not_in_the_structured_fields(
    admin, contributor, experiment, receiver
):
    name = "x <!channel> & <!here|boss>"
    model = create_registered_model(actor=contributor, name=name)
    create_webhook(
        actor=admin, name="<!here>", url=receiver.url, events=["model_version.created"], model=model
    )
    create_model_version(
        actor=contributor, model=model, run=start_run(actor=contributor, experiment=experiment)
    )

    dispatch_webhooks()

    [delivered] = receiver.received
    text = delivered.json["text"]
    assert text.startswith(
        "A model version was registered: x &lt;!channel&gt; &amp; &lt;!here|boss&gt; version 1, "
        "by carl-contributor ("
    )
    assert "<" not in text and ">" not in text
    assert "&" not in text.replace("&amp;", "").replace("&lt;", "").replace("&gt;", "")
    assert delivered.json["after"]["model"] == name  # the structured fields hold the name as it is


def test_a_test_delivery_escapes_the_webhook_s_name_in_text(admin, receiver):
    from registry.services import ping_webhook

    hook = create_webhook(actor=admin, name="<!channel> & co", url=receiver.url, events=REVIEW_EVENTS)

    ping_webhook(actor=admin, webhook=hook)

    [ping] = receiver.received
    assert ping.json["text"] == "Lab Ledger: the webhook “&lt;!channel&gt; &amp; co” reaches this receiver."
    assert ping.json["webhook"]["name"] == "<!channel> & co"
