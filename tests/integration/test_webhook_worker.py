"""Webhooks sent by a real Celery worker running beat's schedule, through Redis, on PostgreSQL:
a promotion request made in the dashboard's database reaches an HTTP receiver on its own."""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from registry.models import WebhookDelivery
from registry.services.webhooks import create_webhook
from tests.integration.conftest import start_worker, stop_worker, wait_for
from tests.registry.conftest import open_request, protected_model, trained_versions  # noqa: F401

pytestmark = pytest.mark.services


@pytest.fixture
def beat_worker(postgres, redis_url, tmp_path):
    """A worker that also runs beat, dispatching webhooks every half second."""
    worker = start_worker(redis_url, beat_schedule=tmp_path / "beat-schedule", WEBHOOK_DISPATCH_SECONDS="0.5")
    try:
        yield worker
    finally:
        stop_worker(worker)


def test_beat_sends_a_promotion_request_to_the_receiver(admin, receiver, beat_worker, request):
    create_webhook(actor=admin, name="reviews", url=receiver.url, events=["promotion.requested"])
    promotion = request.getfixturevalue("open_request")  # after the webhook: it is told of it

    if not wait_for(lambda: receiver.received, timeout=60):
        beat_worker.terminate()
        log = beat_worker.communicate(timeout=20)[0][-4000:]
        pytest.fail(f"nothing was delivered within 60 s; the worker's log:\n{log}")
    [received] = receiver.received
    event = AuditEvent.objects.get(action="promotion.requested")
    assert received.json["event"] == "promotion.requested"
    assert received.json["after"]["request"] == promotion.pk
    assert received.json["audit"]["hash"] == event.hash is not None  # the worker sealed it first
    delivery = wait_for(lambda: WebhookDelivery.objects.filter(status="delivered").first(), timeout=10)
    assert delivery is not None and delivery.attempts == 1 and delivery.response_status == 204
