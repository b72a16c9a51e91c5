"""The audit trail over /api/v1/audit: search, streamed export, checkpoints, the public key and
the stored result of the latest chain check. Nothing here writes an event."""

from __future__ import annotations

import json

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.response import Response

from audit import selectors, services
from audit.export import checkpoint_response, checkpoints_response, export_response, public_key_response
from audit.selectors import EventFilter
from config.api import ApiView, IgnoreAcceptHeader, StrictCharField
from config.exceptions import NotFound

MAX_EVENTS_PER_PAGE = 1000
MAX_CHECKPOINTS_PER_PAGE = 500


class EventFilterSerializer(serializers.Serializer):
    """The filters every audit read shares: the list, the export and the audit page."""

    object_type = StrictCharField(
        required=False, max_length=50, help_text="e.g. tracker.run, registry.modelversion"
    )
    object_id = serializers.ListField(
        child=StrictCharField(max_length=255),
        required=False,
        max_length=50,
        help_text="e.g. a run id; repeat to find an object under each id it had.",
    )
    action = StrictCharField(
        required=False, max_length=100, help_text="e.g. run.batch_logged, model_alias.set"
    )
    actor = StrictCharField(required=False, max_length=150, help_text="Username.")
    since = serializers.DateTimeField(required=False, help_text="Events at or after this time.")
    until = serializers.DateTimeField(required=False, help_text="Events before this time.")

    def validate(self, attrs):
        if "since" in attrs and "until" in attrs and attrs["until"] <= attrs["since"]:
            raise serializers.ValidationError({"until": "must be later than since."})
        return attrs

    @staticmethod
    def to_filter(data: dict) -> EventFilter:
        return EventFilter(
            actor=data.get("actor", ""),
            action=data.get("action", ""),
            object_type=data.get("object_type", ""),
            object_ids=tuple(data.get("object_id", ())),
            since=data.get("since"),
            until=data.get("until"),
        )


class EventSerializer(serializers.Serializer):
    sequence = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    actor = StrictCharField(source="actor_name")
    action = StrictCharField()
    object_type = StrictCharField()
    object_id = StrictCharField()
    before = serializers.JSONField(allow_null=True)
    after = serializers.JSONField(allow_null=True)
    previous_hash = StrictCharField(allow_null=True, help_text="Null until the event is sealed.")
    hash = StrictCharField(allow_null=True, help_text="Null until the event is sealed.")
    sealed = serializers.BooleanField(
        source="is_sealed", help_text="Linked into the chain; the sealer runs every few seconds."
    )


class AuditEventListApi(ApiView):
    """Audit events in sequence order, oldest first; page with after_sequence."""

    class FilterSerializer(EventFilterSerializer):
        after_sequence = serializers.IntegerField(min_value=0, max_value=2**63 - 1, default=0)
        limit = serializers.IntegerField(min_value=1, max_value=MAX_EVENTS_PER_PAGE, default=100)

    class OutputSerializer(serializers.Serializer):
        events = EventSerializer(many=True)
        next_after_sequence = serializers.IntegerField(
            allow_null=True, help_text="Pass as after_sequence for the next page; null on the last page."
        )

    @extend_schema(parameters=[FilterSerializer], responses=OutputSerializer)
    def get(self, request):
        query = self.FilterSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        limit = query.validated_data["limit"]
        events = selectors.events_after(
            filters=EventFilterSerializer.to_filter(query.validated_data),
            after_sequence=query.validated_data["after_sequence"],
            reader=request.user,
        )
        page = list(events[: limit + 1])
        next_after = page[limit - 1].sequence if len(page) > limit else None
        return Response(
            self.OutputSerializer({"events": page[:limit], "next_after_sequence": next_after}).data
        )


class AuditEventExportApi(ApiView):
    """Every matching event in chain order, streamed (constant memory) as CSV or JSON lines.

    An unfiltered export verifies offline: `python -m audit.offline_verify export.jsonl
    --public-key audit-key.pub --checkpoints checkpoints.jsonl`.
    """

    content_negotiation_class = IgnoreAcceptHeader

    class FilterSerializer(EventFilterSerializer):
        format = serializers.ChoiceField(choices=["csv", "jsonl"], default="csv")

    @extend_schema(
        parameters=[FilterSerializer],
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="CSV, a header line first"),
            (200, "application/x-ndjson"): OpenApiResponse(OpenApiTypes.STR, description="JSON lines"),
        },
    )
    def get(self, request):
        query = self.FilterSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return export_response(
            filters=EventFilterSerializer.to_filter(query.validated_data),
            fmt=query.validated_data["format"],
            reader=request.user,
        )


class CheckpointSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    sequence = serializers.IntegerField(help_text="The chain head's sequence it signed.")
    hash = StrictCharField(help_text="The chain head's hash it signed.")
    key_id = StrictCharField()
    checkpoint = serializers.SerializerMethodField(
        help_text="The signed document, as in the checkpoint file."
    )

    def get_checkpoint(self, row) -> dict:
        return json.loads(row.document)


class AuditCheckpointListApi(ApiView):
    """Signed checkpoints of the chain head, newest first."""

    class FilterSerializer(serializers.Serializer):
        limit = serializers.IntegerField(min_value=1, max_value=MAX_CHECKPOINTS_PER_PAGE, default=50)

    class OutputSerializer(serializers.Serializer):
        checkpoints = CheckpointSerializer(many=True)

    @extend_schema(parameters=[FilterSerializer], responses=OutputSerializer)
    def get(self, request):
        query = self.FilterSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        rows = selectors.list_checkpoints(limit=query.validated_data["limit"])
        return Response(self.OutputSerializer({"checkpoints": rows}).data)


class AuditCheckpointFileApi(ApiView):
    """Every checkpoint as JSON lines, ready for the offline verifier's --checkpoints."""

    content_negotiation_class = IgnoreAcceptHeader

    @extend_schema(responses={(200, "application/x-ndjson"): OpenApiResponse(OpenApiTypes.STR)})
    def get(self, request):
        return checkpoints_response()


class AuditCheckpointDownloadApi(ApiView):
    """One signed checkpoint, as a one-line JSON lines file (the offline verifier's --checkpoints)."""

    content_negotiation_class = IgnoreAcceptHeader

    @extend_schema(responses={(200, "application/x-ndjson"): OpenApiResponse(OpenApiTypes.STR)})
    def get(self, request, checkpoint_id: int):
        row = selectors.get_checkpoint(checkpoint_id=checkpoint_id)
        if row is None:
            raise NotFound(f"checkpoint {checkpoint_id} does not exist.", field="checkpoint_id")
        return checkpoint_response(row)


class AuditPublicKeyApi(ApiView):
    """The Ed25519 public key (PEM) that verifies every checkpoint; keep a copy of your own."""

    content_negotiation_class = IgnoreAcceptHeader

    @extend_schema(responses={(200, "application/x-pem-file"): OpenApiResponse(OpenApiTypes.STR)})
    def get(self, request):
        return public_key_response()


class VerificationSerializer(serializers.Serializer):
    class BreakSerializer(serializers.Serializer):
        sequence = serializers.IntegerField(allow_null=True)
        reason = StrictCharField()

    id = serializers.IntegerField()
    status = StrictCharField(help_text="pending, running, done, or failed (the check could not run).")
    mode = StrictCharField(help_text="incremental (from the last verified checkpoint) or full.")
    ok = serializers.BooleanField(allow_null=True, help_text="null until the check has finished.")
    checked = serializers.IntegerField(help_text="Events whose hash and link held.")
    from_sequence = serializers.IntegerField()
    through_sequence = serializers.IntegerField()
    checkpoints_checked = serializers.IntegerField(help_text="Signed checkpoints the chain matched.")
    broken = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)

    @extend_schema_field(BreakSerializer(allow_null=True))
    def get_broken(self, row) -> dict | None:
        """Where the chain broke; a failed check has a reason but no sequence."""
        if row.broken_sequence is None and row.status != "failed":
            return None
        return {"sequence": row.broken_sequence, "reason": row.reason}


class AuditVerifyApi(ApiView):
    """The stored result of the latest chain check (a check never runs inside this request)."""

    error_responses = {404: "No check of the audit chain has finished yet."}

    @extend_schema(responses=VerificationSerializer)
    def get(self, request):
        latest = selectors.latest_verification()
        if latest is None:
            raise NotFound(
                "no check of the audit chain has finished yet; POST /api/v1/audit/verify to start one."
            )
        return Response(VerificationSerializer(latest).data)


class AuditVerifyStartApi(ApiView):
    """Queue a check on a worker; a check already waiting is returned instead of a second one."""

    class InputSerializer(serializers.Serializer):
        full = serializers.BooleanField(
            default=False, help_text="Walk the whole chain rather than from the last verified checkpoint."
        )

    @extend_schema(request=InputSerializer, responses={202: VerificationSerializer})
    def post(self, request):
        body = self.InputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        verification, _ = services.request_verification(actor=request.user, full=body.validated_data["full"])
        return Response(VerificationSerializer(verification).data, status=status.HTTP_202_ACCEPTED)
