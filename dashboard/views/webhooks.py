"""Webhooks (admins): add one, change what it hears, read its delivery log, send a failed
delivery again. A secret is shown in the one response that made it, like an API token."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from config.exceptions import ApplicationError
from registry import selectors, services
from registry.models import Webhook

from ..access import viewer_required
from ..forms import WebhookForm
from ..registry_pages import submit


@never_cache  # the answer may hold a signing secret: out of caches and the back/forward cache
@require_http_methods(["GET", "POST"])
@viewer_required
def webhook_list(request: HttpRequest) -> HttpResponse:
    webhooks = selectors.list_webhooks(user=request.user)  # refuses anyone but an admin first
    form = WebhookForm(request.POST or None)
    created, status = None, 200
    if request.method == "POST":

        def create(data: dict[str, Any]) -> Webhook:
            model = selectors.webhook_model(user=request.user, name=data["model"])
            return services.create_webhook(
                actor=request.user, name=data["name"], url=data["url"], events=data["events"], model=model
            )

        created, status = submit(form, create)
        if created is not None:
            form = WebhookForm()
    context = {"webhooks": list(webhooks), "form": form, "created": created}
    return render(request, "dashboard/webhooks.html", context, status=status)


def _detail_page(
    request: HttpRequest,
    webhook: Webhook,
    *,
    form: WebhookForm | None = None,
    secret: bool = False,
    status: int = 200,
) -> HttpResponse:
    initial = {
        "name": webhook.name,
        "url": webhook.url,
        "model": webhook.model.name if webhook.model else "",
        "events": webhook.events,
        "is_active": webhook.is_active,
    }
    context = {
        "webhook": webhook,
        "form": form or WebhookForm(initial=initial),
        "deliveries": selectors.recent_deliveries(webhook=webhook),
        "shown": selectors.DELIVERIES_SHOWN,
        "show_secret": secret,
    }
    return render(request, "dashboard/webhook_detail.html", context, status=status)


@never_cache
@require_http_methods(["GET", "POST"])
@viewer_required
def webhook_detail(request: HttpRequest, webhook_id: int) -> HttpResponse:
    webhook = selectors.get_webhook(user=request.user, webhook_id=webhook_id)
    if request.method == "GET":
        return _detail_page(request, webhook)
    form = WebhookForm(request.POST)

    def update(data: dict[str, Any]) -> Webhook:
        model = selectors.webhook_model(user=request.user, name=data["model"])
        return services.update_webhook(
            actor=request.user,
            webhook=webhook,
            name=data["name"],
            url=data["url"],
            events=data["events"],
            model=model,
            all_models=model is None,
            is_active=data["is_active"],
        )

    saved, status = submit(form, update)
    if saved is None:
        return _detail_page(request, webhook, form=form, status=status)
    messages.success(request, f"Webhook “{saved.name}” was saved.")
    return redirect("dashboard:webhook-detail", webhook_id=saved.pk)


@require_POST
@viewer_required
def webhook_rotate(request: HttpRequest, webhook_id: int) -> HttpResponse:
    webhook = selectors.get_webhook(user=request.user, webhook_id=webhook_id)
    webhook = services.rotate_webhook_secret(actor=request.user, webhook=webhook)
    return _detail_page(request, webhook, secret=True)


@require_POST
@viewer_required
def webhook_ping(request: HttpRequest, webhook_id: int) -> HttpResponse:
    webhook = selectors.get_webhook(user=request.user, webhook_id=webhook_id)
    result = services.ping_webhook(actor=request.user, webhook=webhook)
    if result.delivered:
        messages.success(request, f"The receiver answered HTTP {result.status} to a test delivery.")
    elif result.status is None:
        messages.error(request, f"The test delivery got no answer: {result.answer}")
    else:
        messages.error(
            request, f"The receiver answered HTTP {result.status} to a test delivery: {result.answer}"
        )
    return redirect("dashboard:webhook-detail", webhook_id=webhook.pk)


@require_POST
@viewer_required
def webhook_delete(request: HttpRequest, webhook_id: int) -> HttpResponse:
    webhook = selectors.get_webhook(user=request.user, webhook_id=webhook_id)
    services.delete_webhook(actor=request.user, webhook=webhook)
    messages.success(request, f"Webhook “{webhook.name}” was deleted.")
    return redirect("dashboard:webhooks")


@require_POST
@viewer_required
def delivery_redeliver(request: HttpRequest, delivery_id: int) -> HttpResponse:
    delivery = selectors.get_delivery(user=request.user, delivery_id=delivery_id)
    try:
        services.redeliver(actor=request.user, delivery=delivery)
    except ApplicationError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"Delivery #{delivery.pk} will be sent again within seconds.")
    return redirect("dashboard:webhook-detail", webhook_id=delivery.webhook_id)
