"""Audit events (read-only, in sequence order) and a check of the hash chain."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from accounts.api import ApiView
from audit.selectors import list_events
from audit.verification import verify_chain

MAX_EVENTS_PER_PAGE = 1000


class AuditEventListApi(ApiView):
    """Audit events in sequence order, oldest first; page with after_sequence."""

    class FilterSerializer(serializers.Serializer):
        object_type = serializers.CharField(
            required=False, help_text="e.g. tracker.run, registry.modelversion"
        )
        object_id = serializers.CharField(required=False, help_text="e.g. a run id, a model name, name/3")
        action = serializers.CharField(required=False, help_text="e.g. run.batch_logged, model_alias.set")
        actor = serializers.CharField(required=False, help_text="Username.")
        after_sequence = serializers.IntegerField(min_value=0, max_value=2**63 - 1, default=0)
        limit = serializers.IntegerField(min_value=1, max_value=MAX_EVENTS_PER_PAGE, default=100)

    class OutputSerializer(serializers.Serializer):
        class ItemSerializer(serializers.Serializer):
            sequence = serializers.IntegerField()
            created_at = serializers.DateTimeField()
            actor = serializers.CharField(source="actor_name")
            action = serializers.CharField()
            object_type = serializers.CharField()
            object_id = serializers.CharField()
            before = serializers.JSONField(allow_null=True)
            after = serializers.JSONField(allow_null=True)
            previous_hash = serializers.CharField()
            hash = serializers.CharField()

        events = ItemSerializer(many=True)
        next_after_sequence = serializers.IntegerField(
            allow_null=True, help_text="Pass as after_sequence for the next page; null on the last page."
        )

    @extend_schema(parameters=[FilterSerializer], responses=OutputSerializer)
    def get(self, request):
        query = self.FilterSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        filters = dict(query.validated_data)
        limit = filters.pop("limit")
        events = list(list_events(**filters)[: limit + 1])
        next_after = events[limit - 1].sequence if len(events) > limit else None
        return Response(
            self.OutputSerializer({"events": events[:limit], "next_after_sequence": next_after}).data
        )


class AuditVerifyApi(ApiView):
    """Recompute the hash chain; `broken` names the first event that was edited or removed."""

    class OutputSerializer(serializers.Serializer):
        class BreakSerializer(serializers.Serializer):
            sequence = serializers.IntegerField()
            reason = serializers.CharField()

        ok = serializers.BooleanField()
        checked = serializers.IntegerField(help_text="Events whose hash and link held.")
        broken = BreakSerializer(allow_null=True)

    @extend_schema(responses=OutputSerializer)
    def get(self, request):
        report = verify_chain()
        return Response(self.OutputSerializer(report).data)
