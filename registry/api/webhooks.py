"""Webhooks over the API (admins): the same services as the dashboard's pages. A webhook's secret
is in the answer that made it (create, rotate-secret) and in no other."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from config.api import ApiView, StrictCharField
from registry import selectors, services
from registry.models import Webhook, WebhookDelivery

MAX_DELIVERIES_LISTED = 500


class WebhookSerializer(serializers.ModelSerializer):
    model = StrictCharField(source="model.name", allow_null=True, default=None)
    created_by = StrictCharField(source="created_by.username", allow_null=True, default=None)
    active = serializers.BooleanField(source="is_active")

    class Meta:
        model = Webhook
        fields = ["id", "name", "url", "model", "events", "active", "created_by", "created_at"]


class WebhookWithSecretSerializer(WebhookSerializer):
    class Meta(WebhookSerializer.Meta):
        fields = [*WebhookSerializer.Meta.fields, "secret"]


class DeliverySerializer(serializers.ModelSerializer):
    event = StrictCharField(source="event.action")
    sequence = serializers.IntegerField(source="event.sequence")

    class Meta:
        model = WebhookDelivery
        fields = [
            "id", "event", "sequence", "status", "attempts", "next_attempt_at", "last_attempt_at",
            "response_status", "last_error", "created_at",
        ]  # fmt: skip


class WebhookInputSerializer(serializers.Serializer):
    name = StrictCharField(max_length=100)
    url = StrictCharField(max_length=2000, help_text="An http:// or https:// address.")
    model = StrictCharField(
        required=False, allow_null=True, help_text="A registered model's name; null or absent: every model."
    )
    events = serializers.MultipleChoiceField(choices=list(services.WEBHOOK_EVENTS), allow_empty=False)
    active = serializers.BooleanField(required=False)


def _events(data: dict) -> list[str] | None:
    """The chosen events in the catalogue's order (DRF hands them over as a set)."""
    if "events" not in data:
        return None
    return [event for event in services.WEBHOOK_EVENTS if event in data["events"]]


class WebhookListApi(ApiView):
    """Every webhook (admins only)."""

    class OutputSerializer(serializers.Serializer):
        webhooks = WebhookSerializer(many=True)

    @extend_schema(responses=OutputSerializer)
    def get(self, request):
        return Response(self.OutputSerializer({"webhooks": selectors.list_webhooks(user=request.user)}).data)


class WebhookCreateApi(ApiView):
    """Add a webhook, told of the chosen events recorded from now on; the answer holds its
    signing secret, which is never shown again."""

    @extend_schema(request=WebhookInputSerializer, responses={201: WebhookWithSecretSerializer})
    def post(self, request):
        body = WebhookInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        webhook = services.create_webhook(
            actor=request.user,
            name=data["name"],
            url=data["url"],
            events=_events(data) or [],
            model=selectors.webhook_model(user=request.user, name=data.get("model")),
        )
        if data.get("active") is False:
            webhook = services.update_webhook(actor=request.user, webhook=webhook, is_active=False)
        return Response(WebhookWithSecretSerializer(webhook).data, status=status.HTTP_201_CREATED)


class WebhookGetApi(ApiView):
    @extend_schema(responses=WebhookSerializer)
    def get(self, request, webhook_id):
        webhook = selectors.get_webhook(user=request.user, webhook_id=webhook_id)
        return Response(WebhookSerializer(webhook).data)


class WebhookUpdateApi(ApiView):
    """Change any of name, url, model (null: every model), events and active."""

    @extend_schema(request=WebhookInputSerializer(partial=True), responses=WebhookSerializer)
    def patch(self, request, webhook_id):
        webhook = selectors.get_webhook(user=request.user, webhook_id=webhook_id)
        body = WebhookInputSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        webhook = services.update_webhook(
            actor=request.user,
            webhook=webhook,
            name=data.get("name"),
            url=data.get("url"),
            events=_events(data),
            model=selectors.webhook_model(user=request.user, name=data.get("model")),
            all_models="model" in data and data["model"] is None,
            is_active=data.get("active"),
        )
        return Response(WebhookSerializer(webhook).data)


class WebhookDeleteApi(ApiView):
    @extend_schema(responses={204: None})
    def delete(self, request, webhook_id):
        webhook = selectors.get_webhook(user=request.user, webhook_id=webhook_id)
        services.delete_webhook(actor=request.user, webhook=webhook)
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookRotateSecretApi(ApiView):
    """A new signing secret, in this answer only."""

    @extend_schema(request=None, responses=WebhookWithSecretSerializer)
    def post(self, request, webhook_id):
        webhook = selectors.get_webhook(user=request.user, webhook_id=webhook_id)
        webhook = services.rotate_webhook_secret(actor=request.user, webhook=webhook)
        return Response(WebhookWithSecretSerializer(webhook).data)


class WebhookPingApi(ApiView):
    """Send a signed `webhook.ping` now and answer with how the receiver answered (status null:
    no answer, and `answer` says why). Nothing is recorded or retried."""

    class OutputSerializer(serializers.Serializer):
        delivered = serializers.BooleanField()
        status = serializers.IntegerField(allow_null=True)
        answer = StrictCharField(allow_blank=True)

    @extend_schema(request=None, responses=OutputSerializer)
    def post(self, request, webhook_id):
        webhook = selectors.get_webhook(user=request.user, webhook_id=webhook_id)
        result = services.ping_webhook(actor=request.user, webhook=webhook)
        body = {"delivered": result.delivered, "status": result.status, "answer": result.answer}
        return Response(self.OutputSerializer(body).data)


class WebhookDeliveryListApi(ApiView):
    """A webhook's deliveries, newest first."""

    class FilterSerializer(serializers.Serializer):
        limit = serializers.IntegerField(min_value=1, max_value=MAX_DELIVERIES_LISTED, default=50)

    class OutputSerializer(serializers.Serializer):
        deliveries = DeliverySerializer(many=True)

    @extend_schema(parameters=[FilterSerializer], responses=OutputSerializer)
    def get(self, request, webhook_id):
        webhook = selectors.get_webhook(user=request.user, webhook_id=webhook_id)
        query = self.FilterSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        deliveries = selectors.recent_deliveries(webhook=webhook, limit=query.validated_data["limit"])
        return Response(self.OutputSerializer({"deliveries": deliveries}).data)


class DeliveryRedeliverApi(ApiView):
    """Send a failed delivery again, with a fresh set of attempts."""

    error_responses = {409: "The delivery has not failed."}

    @extend_schema(request=None, responses=DeliverySerializer)
    def post(self, request, delivery_id):
        delivery = selectors.get_delivery(user=request.user, delivery_id=delivery_id)
        delivery = services.redeliver(actor=request.user, delivery=delivery)
        return Response(DeliverySerializer(delivery).data)
