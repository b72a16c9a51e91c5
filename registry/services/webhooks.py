"""Webhooks: admins point registry events at an HTTP endpoint (a chat channel, a CI job, a
deployment system). These are the writes; registry.services.webhook_delivery sends the events.

Only admins manage webhooks: a webhook makes the server send requests to an address of the
admin's choosing, and its secret is a credential.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from accounts.roles import Role, require_role
from audit.models import AuditEvent
from audit.services import record_event
from config.exceptions import Conflict, InvalidInput
from registry.models import RegisteredModel, Webhook, WebhookDelivery
from tracker.validation import validate_text

from .webhook_addresses import literal_address_refusal

# The audit actions a webhook may subscribe to, with what each tells the receiver. The names are
# the audit trail's own, so a delivery and the event it reports read the same.
WEBHOOK_EVENTS: dict[str, str] = {
    "registered_model.created": "A registered model was created",
    "model_version.created": "A model version was registered",
    "model_version.stage_changed": "A version's stage was changed",
    "model_alias.set": "An alias was pointed at a version",
    "model_alias.deleted": "An alias was removed",
    "model_version.tag_set": "A version's tag was set",
    "promotion.requested": "A promotion was requested",
    "promotion.approved": "A reviewer approved a promotion",
    "promotion.rejected": "A reviewer rejected a promotion",
    "promotion.applied": "An approved promotion moved its label",
    "promotion.forced": "An admin forced a promotion (break-glass)",
    "promotion.withdrawn": "A promotion request was withdrawn",
    "promotion.superseded": "A promotion request was superseded",
    "promotion.closed": "A promotion request was closed",
    "model_version.deleted": "A model version was deleted",
    "registered_model.deleted": "A registered model was deleted",
}
MAX_WEBHOOK_NAME = 100
MAX_WEBHOOK_URL = 2000


def _validated_name(name: str) -> str:
    return validate_text(name, field="name", max_length=MAX_WEBHOOK_NAME, allow_empty=False).strip()


def validate_webhook_url(url: str) -> str:
    """An absolute http(s) address with a host; anything else could not be delivered to."""
    url = validate_text(url, field="url", max_length=MAX_WEBHOOK_URL).strip()
    try:
        parts = urlsplit(url)
        host, _port = parts.hostname, parts.port  # the port raises ValueError unless a number
    except ValueError as error:
        raise InvalidInput(f"{url!r} is not a valid address ({error})", field="url") from error
    if parts.scheme not in ("http", "https") or not host:
        raise InvalidInput(f"must be an http:// or https:// address with a host, got {url!r}", field="url")
    if refusal := literal_address_refusal(url):
        raise InvalidInput(refusal, field="url")
    return url


def _validated_events(events: Sequence[str]) -> list[str]:
    if isinstance(events, str) or not isinstance(events, Sequence):
        raise InvalidInput("must be a list of event names", field="events")
    unknown = [event for event in events if event not in WEBHOOK_EVENTS]
    if unknown:
        raise InvalidInput(
            f"{', '.join(map(repr, unknown))} is not an event a webhook can receive "
            f"(one of {', '.join(WEBHOOK_EVENTS)})",
            field="events",
        )
    if not events:
        raise InvalidInput("choose at least one event", field="events")
    return [event for event in WEBHOOK_EVENTS if event in events]  # the catalogue's order, once each


def _description(webhook: Webhook) -> dict[str, Any]:
    """What the audit trail keeps of a webhook: never its secret, and of its address only the
    host, since some receivers (chat incoming webhooks) carry a credential in the path."""
    return {
        "name": webhook.name,
        "host": urlsplit(webhook.url).hostname,
        "model": webhook.model.name if webhook.model else None,
        "events": webhook.events,
        "active": webhook.is_active,
    }


def _new_secret() -> str:
    return secrets.token_urlsafe(32)


def create_webhook(
    *,
    actor: User,
    name: str,
    url: str,
    events: Sequence[str],
    model: RegisteredModel | None = None,
) -> Webhook:
    """A new, active webhook, told of events recorded from now on (not of earlier ones)."""
    require_role(actor, Role.ADMIN, action="Adding a webhook")
    webhook = Webhook(
        name=_validated_name(name),
        url=validate_webhook_url(url),
        events=_validated_events(events),
        model=model,
        secret=_new_secret(),
        created_by=actor,
    )
    with transaction.atomic():
        webhook.cursor = AuditEvent.objects.aggregate(newest=Max("sequence"))["newest"] or 0
        webhook.save()
        record_event(actor=actor, action="webhook.created", target=webhook, after=_description(webhook))
    return webhook


def update_webhook(
    *,
    actor: User,
    webhook: Webhook,
    name: str | None = None,
    url: str | None = None,
    events: Sequence[str] | None = None,
    model: RegisteredModel | None = None,
    all_models: bool = False,
    is_active: bool | None = None,
) -> Webhook:
    """Change what a webhook hears or where it sends; `all_models` widens it to every model.
    Turning it back on resumes from now: what happened while it was off is not sent."""
    require_role(actor, Role.ADMIN, action="Changing a webhook")
    with transaction.atomic():
        webhook = Webhook.objects.select_for_update().get(pk=webhook.pk)
        before = _description(webhook)
        if name is not None:
            webhook.name = _validated_name(name)
        if url is not None:
            webhook.url = validate_webhook_url(url)
        if events is not None:
            webhook.events = _validated_events(events)
        if all_models or model is not None:
            webhook.model = model
        if is_active is not None:
            if is_active and not webhook.is_active:
                webhook.cursor = AuditEvent.objects.aggregate(newest=Max("sequence"))["newest"] or 0
            webhook.is_active = is_active
        webhook.save()
        after = _description(webhook)
        if after != before:
            record_event(actor=actor, action="webhook.updated", target=webhook, before=before, after=after)
    return webhook


def rotate_webhook_secret(*, actor: User, webhook: Webhook) -> Webhook:
    """A new signing secret; deliveries from now on are signed with it."""
    require_role(actor, Role.ADMIN, action="Rotating a webhook's secret")
    with transaction.atomic():
        webhook = Webhook.objects.select_for_update().get(pk=webhook.pk)
        webhook.secret = _new_secret()
        webhook.save(update_fields=["secret"])
        record_event(
            actor=actor, action="webhook.secret_rotated", target=webhook, after={"name": webhook.name}
        )
    return webhook


def delete_webhook(*, actor: User, webhook: Webhook) -> None:
    """Remove a webhook and its delivery log (the audit trail keeps that it existed)."""
    require_role(actor, Role.ADMIN, action="Deleting a webhook")
    with transaction.atomic():
        record_event(actor=actor, action="webhook.deleted", target=webhook, before=_description(webhook))
        webhook.delete()


def redeliver(*, actor: User, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a failed delivery again, with a fresh set of attempts."""
    require_role(actor, Role.ADMIN, action="Sending a webhook delivery again")
    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery.pk)
        if delivery.status != WebhookDelivery.Status.FAILED:
            raise Conflict(f"delivery #{delivery.pk} is {delivery.status}, not failed", field="delivery")
        delivery.status = WebhookDelivery.Status.PENDING
        delivery.attempts = 0
        delivery.next_attempt_at = timezone.now()
        delivery.save(update_fields=["status", "attempts", "next_attempt_at"])
    return delivery
