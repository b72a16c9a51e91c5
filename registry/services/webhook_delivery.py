"""Sending registry events to webhooks, from the sealed audit chain.

Deliveries are made from the chain, not from the write paths: a registry write never waits on
a receiver and costs nothing more for having webhooks, an event is sent exactly when the trail
holds it, and each body carries the event's sequence and hash, so a receiver can match it
against an export of the trail. Only sealed events are read: below the chain head no
transaction still in flight can commit an event, so a webhook's cursor never skips one.

`dispatch_webhooks` runs on beat (every WEBHOOK_DISPATCH_SECONDS): it turns new events into
delivery rows, then sends the rows that are due. A failed attempt is tried again after 30 s,
1 min, 2 min… (at most an hour apart) until WEBHOOK_MAX_ATTEMPTS; a row is claimed before it is
sent, so two workers never send the same one at once. Receivers may still see a delivery twice
(a worker lost after sending, before recording): the `X-LabLedger-Delivery` id tells them.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
import requests
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.db.models import Q
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from accounts.roles import Role, require_role
from audit.models import AuditChainHead, AuditEvent
from audit.sealing import seal_events
from registry.models import AUDIT_ID_PREFIX, ModelVersion, RegisteredModel, Webhook, WebhookDelivery

from .webhook_addresses import resolved_address_refusal
from .webhooks import WEBHOOK_EVENTS

logger = logging.getLogger(__name__)

COLLECT_BATCH = 500  # events a webhook's cursor moves over per query
SEND_BATCH = 10  # deliveries claimed at once, and leased for as long as sending them all may take
FIRST_RETRY = timedelta(seconds=30)
LONGEST_RETRY = timedelta(hours=1)
MAX_ANSWER_KEPT = 500
USER_AGENT = "LabLedger-Webhook/1"
MODEL_TYPE = RegisteredModel._meta.label_lower
VERSION_TYPE = ModelVersion._meta.label_lower
# What one attempt changes on its row.
ATTEMPT_FIELDS = ["status", "attempts", "last_attempt_at", "response_status", "last_error", "next_attempt_at"]


@dataclass(frozen=True)
class DispatchResult:
    queued: int
    delivered: int
    failed_attempts: int


def _model_scope(model: RegisteredModel) -> Q:
    """The events about one model: its own, and its versions' (deleted ones too)."""
    versions = ModelVersion.all_objects.filter(model=model).values_list("pk", flat=True)
    version_ids = [f"{AUDIT_ID_PREFIX}{pk}" for pk in versions]
    return Q(object_type=MODEL_TYPE, object_id=model.audit_id) | Q(
        object_type=VERSION_TYPE, object_id__in=version_ids
    )


def _collect_for(webhook_id: int, head: int) -> int:
    """Turn the webhook's new sealed events into delivery rows and move its cursor past them."""
    with transaction.atomic():
        webhook = Webhook.objects.select_for_update(of=("self",)).select_related("model").get(pk=webhook_id)
        if not webhook.is_active or webhook.cursor >= head:
            return 0
        events = AuditEvent.objects.filter(
            sequence__gt=webhook.cursor, sequence__lte=head, action__in=webhook.events
        )
        if webhook.model is not None:
            events = events.filter(_model_scope(webhook.model))
        found = list(events.order_by("sequence").values_list("pk", "sequence")[:COLLECT_BATCH])
        now = timezone.now()
        WebhookDelivery.objects.bulk_create(
            [WebhookDelivery(webhook=webhook, event_id=pk, next_attempt_at=now) for pk, _ in found],
            ignore_conflicts=True,
        )
        webhook.cursor = found[-1][1] if len(found) == COLLECT_BATCH else head
        webhook.save(update_fields=["cursor"])
    return len(found)


def collect_deliveries() -> int:
    """Delivery rows for every active webhook's events sealed since its cursor."""
    seal_events()  # so events committed a moment ago are sent now, not after the next seal
    head = AuditChainHead.objects.filter(id=1).values_list("sequence", flat=True).first() or 0
    queued = 0
    for webhook_id in Webhook.objects.filter(is_active=True, cursor__lt=head).values_list("pk", flat=True):
        while (found := _collect_for(webhook_id, head)) == COLLECT_BATCH:
            queued += found
        queued += found
    return queued


def _claim_due(now: datetime) -> list[WebhookDelivery]:
    """Due deliveries, leased to this worker for as long as sending each of them could take (every
    receiver timing out), so another worker does not send them again meanwhile."""
    lease = timedelta(seconds=SEND_BATCH * settings.WEBHOOK_TIMEOUT_SECONDS + 30)
    with transaction.atomic():
        due = WebhookDelivery.objects.filter(
            status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now, webhook__is_active=True
        ).order_by("next_attempt_at", "pk")
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True, of=("self",))
        claimed = list(due.select_related("webhook", "webhook__model", "event")[:SEND_BATCH])
        WebhookDelivery.objects.filter(pk__in=[d.pk for d in claimed]).update(next_attempt_at=now + lease)
    return claimed


def _link(name: str, *args: Any, query: str = "") -> str | None:
    """An absolute address of a page (PUBLIC_URL), or None for one that cannot be named (a model
    name that no longer makes a valid path)."""
    try:
        path = reverse(name, args=args)
    except NoReverseMatch:
        return None
    return f"{settings.PUBLIC_URL.rstrip('/')}{path}{query}"


def _chat_escaped(value: object) -> str:
    """User text for a `text` line: Slack and Mattermost read `<!channel>`, `<@user>` and
    `<url|label>` there as commands and links, so `&`, `<` and `>` go as their message formatting
    asks (a model named `x <!channel>` must not ping a channel)."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def webhook_payload(delivery: WebhookDelivery) -> dict[str, Any]:
    """The body a receiver gets: the event as the trail holds it, links to the pages about it,
    and a line of `text`, which chat tools whose incoming webhooks read `text` show as the message."""
    event, data = delivery.event, delivery.event.after or delivery.event.before or {}
    model, version, request = data.get("model"), data.get("version"), data.get("request")
    links = {"audit": _link("dashboard:audit", query=f"?action={event.action}")}
    if isinstance(model, str):
        links["model"] = _link("dashboard:model-detail", model)
        if isinstance(version, int):
            links["version"] = _link("dashboard:version-detail", model, version)
            links["why"] = _link("dashboard:version-lineage", model, version)
    if isinstance(request, int):
        links["request"] = _link("dashboard:request-detail", request)
    subject = f"{model} version {version}" if version is not None else str(model or event.object_id)
    # A new version's data names its stage ("None"); only a stage change moves it anywhere.
    stage = data.get("stage") if event.action == "model_version.stage_changed" else None
    named_label = data.get("label") or data.get("alias") or stage
    label = f" → {_chat_escaped(named_label)}" if named_label else ""
    text = (
        f"{WEBHOOK_EVENTS.get(event.action, event.action)}: {_chat_escaped(subject)}{label}, "
        f"by {_chat_escaped(event.actor_name)}"
    )
    if links.get("request") or links.get("version"):
        text += f" ({_chat_escaped(links.get('request') or links.get('version'))})"
    return {
        "delivery": delivery.pk,
        "event": event.action,
        "text": text,
        "occurred_at": event.created_at.isoformat(),
        "actor": event.actor_name,
        "object": {"type": event.object_type, "id": event.object_id},
        "before": event.before,
        "after": event.after,
        "audit": {"sequence": event.sequence, "hash": event.hash, "previous_hash": event.previous_hash},
        "links": {key: url for key, url in links.items() if url},
    }


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=` and the HMAC-SHA256 of "<timestamp>.<body>" under the webhook's secret; the
    timestamp inside it lets a receiver refuse an old delivery replayed at it."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def _post(
    webhook: Webhook, *, event: str, delivery_id: str, payload: dict[str, Any]
) -> tuple[int | None, str]:
    """POST one signed body: the receiver's status (None when there was no answer) and its words."""
    body = orjson.dumps(payload)
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-LabLedger-Event": event,
        "X-LabLedger-Delivery": delivery_id,
        "X-LabLedger-Timestamp": timestamp,
        "X-LabLedger-Signature": signature(webhook.secret, timestamp, body),
    }
    if refusal := resolved_address_refusal(webhook.url):
        return None, refusal[:MAX_ANSWER_KEPT]
    try:
        # No redirects: a receiver that moved must be changed by an admin, not followed blindly.
        response = requests.post(
            webhook.url,
            data=body,
            headers=headers,
            timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
            allow_redirects=False,
        )
    except requests.RequestException as error:
        return None, f"{type(error).__name__}: {error}"[:MAX_ANSWER_KEPT]
    return response.status_code, response.text[:MAX_ANSWER_KEPT]


@dataclass(frozen=True)
class PingResult:
    status: int | None  # None: no answer
    answer: str

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def ping_webhook(*, actor: User, webhook: Webhook) -> PingResult:
    """Send a `webhook.ping` now, signed like any delivery, and say how the receiver answered:
    what an admin does right after setting a receiver up. Nothing is recorded or retried."""
    require_role(actor, Role.ADMIN, action="Testing a webhook")
    payload = {
        "delivery": None,
        "event": "webhook.ping",
        "text": f"Lab Ledger: the webhook “{_chat_escaped(webhook.name)}” reaches this receiver.",
        "occurred_at": timezone.now().isoformat(),
        "webhook": {"id": webhook.pk, "name": webhook.name, "events": webhook.events},
        "links": {"webhook": _link("dashboard:webhook-detail", webhook.pk)},
    }
    status, answer = _post(webhook, event="webhook.ping", delivery_id=f"ping-{webhook.pk}", payload=payload)
    return PingResult(status, answer)


def retry_delay(attempts: int) -> timedelta:
    """30 s after the first failed attempt, doubling, at most an hour."""
    return min(FIRST_RETRY * 2 ** (attempts - 1), LONGEST_RETRY)


def send_delivery(delivery: WebhookDelivery) -> bool:
    """One attempt, recorded on the row; True when the receiver answered 2xx."""
    status, answer = _post(
        delivery.webhook,
        event=delivery.event.action,
        delivery_id=str(delivery.pk),
        payload=webhook_payload(delivery),
    )
    now = timezone.now()
    delivery.attempts += 1
    delivery.last_attempt_at, delivery.response_status = now, status
    delivered = status is not None and 200 <= status < 300
    if delivered:
        delivery.status, delivery.last_error = WebhookDelivery.Status.DELIVERED, ""
    else:
        delivery.last_error = answer if status is None else f"HTTP {status}: {answer}"[:MAX_ANSWER_KEPT]
        if delivery.attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
            delivery.status = WebhookDelivery.Status.FAILED
        else:
            delivery.next_attempt_at = now + retry_delay(delivery.attempts)
        logger.warning("webhook delivery %s failed: %s", delivery.pk, delivery.last_error)
    delivery.save(update_fields=ATTEMPT_FIELDS)
    return delivered


def deliver_due() -> tuple[int, int]:
    """Send every delivery that is due: how many were delivered, how many attempts failed."""
    delivered = failed = 0
    while claimed := _claim_due(timezone.now()):
        for delivery in claimed:
            if send_delivery(delivery):
                delivered += 1
            else:
                failed += 1
        if len(claimed) < SEND_BATCH:
            break
    return delivered, failed


def dispatch_webhooks() -> DispatchResult:
    """Queue the new events, then send what is due (the beat task's whole job)."""
    if not Webhook.objects.filter(is_active=True).exists():
        return DispatchResult(0, 0, 0)
    queued = collect_deliveries()
    delivered, failed = deliver_due()
    return DispatchResult(queued, delivered, failed)
