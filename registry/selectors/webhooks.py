"""Reads of webhooks and their delivery log: admins only, like the writes."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db.models import Count, Max, Q, QuerySet

from accounts.roles import Role, require_role
from config.exceptions import InvalidInput, NotFound
from registry.models import RegisteredModel, Webhook, WebhookDelivery

from .catalog import get_registered_model

DELIVERIES_SHOWN = 50


def list_webhooks(*, user: User) -> QuerySet[Webhook]:
    """Every webhook, with how many deliveries wait or failed and when one was last tried."""
    require_role(user, Role.ADMIN, action="Seeing webhooks")
    return Webhook.objects.select_related("model", "created_by").annotate(
        pending=Count("deliveries", filter=Q(deliveries__status=WebhookDelivery.Status.PENDING)),
        failed=Count("deliveries", filter=Q(deliveries__status=WebhookDelivery.Status.FAILED)),
        last_attempt_at=Max("deliveries__last_attempt_at"),
    )


def get_webhook(*, user: User, webhook_id: int) -> Webhook:
    require_role(user, Role.ADMIN, action="Seeing webhooks")
    webhook = Webhook.objects.select_related("model", "created_by").filter(pk=webhook_id).first()
    if webhook is None:
        raise NotFound(f"webhook {webhook_id} does not exist", field="webhook")
    return webhook


def recent_deliveries(*, webhook: Webhook, limit: int = DELIVERIES_SHOWN) -> list[WebhookDelivery]:
    """The newest deliveries first, each with the event it reports."""
    return list(webhook.deliveries.select_related("event").order_by("-pk")[:limit])


def get_delivery(*, user: User, delivery_id: int) -> WebhookDelivery:
    require_role(user, Role.ADMIN, action="Seeing webhook deliveries")
    delivery = WebhookDelivery.objects.select_related("webhook").filter(pk=delivery_id).first()
    if delivery is None:
        raise NotFound(f"webhook delivery {delivery_id} does not exist", field="delivery")
    return delivery


def webhook_model(*, user: User, name: str | None) -> RegisteredModel | None:
    """The model a webhook is limited to, named as a form or a request body names it (blank or
    None: every model); an unknown name is bad input about the field `model`, not a missing page."""
    if name is None or not name.strip():
        return None
    try:
        return get_registered_model(user=user, name=name.strip())
    except NotFound as error:
        raise InvalidInput(error.message, field="model") from error
