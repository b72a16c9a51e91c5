"""Registry work for a Celery worker: sending registry events to webhooks (on beat)."""

from __future__ import annotations

from celery import shared_task

from registry.services.webhook_delivery import dispatch_webhooks as dispatch


@shared_task(name="registry.dispatch_webhooks")
def dispatch_webhooks() -> dict[str, int]:
    """Queue new registry events for each webhook and send what is due (every
    WEBHOOK_DISPATCH_SECONDS)."""
    result = dispatch()
    return {"queued": result.queued, "delivered": result.delivered, "failed_attempts": result.failed_attempts}
