"""Bulk uploads of metric files: create (202, ingested by a worker), read one, list."""

from __future__ import annotations

import io

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from config.api import ApiView, IdField, StrictCharField
from tracker import selectors
from tracker.models import BulkUpload
from tracker.selectors.uploads import get_upload, list_uploads
from tracker.services.uploads import create_upload


class UploadErrorSerializer(serializers.Serializer):
    message = StrictCharField(help_text="e.g. line 3, column value: 'abc' is not a number")
    line = serializers.IntegerField(allow_null=True, help_text="Line (or row) of the file; 1 is the header.")
    column = StrictCharField()


class UploadSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.SerializerMethodField()
    status = serializers.ChoiceField(choices=BulkUpload.Status.choices)
    format = serializers.ChoiceField(choices=BulkUpload.Format.choices)
    file_name = StrictCharField()
    size_bytes = serializers.IntegerField()
    sha256 = StrictCharField()
    run_id = StrictCharField(source="run.uuid", allow_null=True, default=None)
    experiment_id = serializers.IntegerField(allow_null=True)
    create_runs = serializers.BooleanField()
    idempotency_key = StrictCharField()
    bytes_done = serializers.IntegerField()
    rows_done = serializers.IntegerField()
    points_inserted = serializers.IntegerField(help_text="New points; a point already stored counts once.")
    runs_created = serializers.IntegerField()
    error = serializers.SerializerMethodField()
    attempts = serializers.IntegerField()
    created_by = StrictCharField(source="created_by.username", allow_null=True, default=None)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    duration_seconds = serializers.FloatField(allow_null=True)

    def get_url(self, upload) -> str:
        return reverse("tracker-api:upload", args=[upload.pk])

    @extend_schema_field(UploadErrorSerializer(allow_null=True))
    def get_error(self, upload) -> dict | None:
        if upload.status != BulkUpload.Status.FAILED:
            return None
        return {"message": upload.error_message, "line": upload.error_line, "column": upload.error_column}


_OPTION_PARAMETERS = [
    OpenApiParameter(
        "Idempotency-Key", str, OpenApiParameter.HEADER, description="The same key returns the same upload."
    ),
]


class UploadCreateApi(ApiView):
    """Upload a metric file (CSV, JSON Lines, Parquet; text formats may be gzip-compressed).

    Send it as multipart form data (`file` plus the options), or as the raw request body with the
    options in the query string. The answer is 202 with the upload's URL; a worker ingests the
    file all-or-nothing. The same `Idempotency-Key`, or the same file for the same target,
    answers 200 with the upload that already exists.
    """

    error_responses = {404: "run_id or experiment_id names nothing."}

    parser_classes = [MultiPartParser]

    class InputSerializer(serializers.Serializer):
        file = serializers.FileField(required=False, use_url=False, help_text="Multipart only.")
        file_format = serializers.ChoiceField(
            choices=BulkUpload.Format.choices, required=False, help_text="By default, from the file name."
        )
        file_name = StrictCharField(required=False, max_length=255)
        run_id = StrictCharField(required=False, help_text="Every row goes to this run.")
        experiment_id = IdField(required=False, help_text="Rows' runs must be in it.")
        create_runs = serializers.BooleanField(
            default=False, help_text="Create runs named in a run_name column inside the experiment."
        )

    @extend_schema(
        parameters=_OPTION_PARAMETERS,
        request={"multipart/form-data": InputSerializer, "application/octet-stream": OpenApiTypes.BINARY},
        responses={
            202: UploadSerializer,
            200: OpenApiResponse(UploadSerializer, description="The upload with this key or file."),
        },
    )
    def post(self, request):
        multipart = request.content_type.startswith("multipart/form-data")
        body = self.InputSerializer(data=request.data if multipart else request.query_params)
        body.is_valid(raise_exception=True)
        options = body.validated_data
        content = options.get("file") if multipart else (request.stream or io.BytesIO())
        if content is None:
            raise serializers.ValidationError({"file": ["No file was submitted."]})
        receipt = create_upload(
            actor=request.user,
            content=content,
            file_name=options.get("file_name") or getattr(content, "name", "") or "",
            format=options.get("file_format", ""),
            run=selectors.get_run(user=request.user, run_id=options["run_id"])
            if "run_id" in options
            else None,
            experiment=(
                selectors.get_experiment(user=request.user, experiment_id=options["experiment_id"])
                if "experiment_id" in options
                else None
            ),
            create_runs=options["create_runs"],
            idempotency_key=request.headers.get("Idempotency-Key", ""),
        )
        data = UploadSerializer(receipt.upload).data
        answer = status.HTTP_202_ACCEPTED if receipt.created else status.HTTP_200_OK
        return Response(data, status=answer, headers={"Location": data["url"]})


class UploadListApi(ApiView):
    """The latest uploads, newest first, optionally of one experiment or run."""

    error_responses = {404: "run_id or experiment_id names nothing."}

    class FilterSerializer(serializers.Serializer):
        experiment_id = IdField(required=False)
        run_id = StrictCharField(required=False)
        limit = serializers.IntegerField(min_value=1, max_value=200, default=50)

    class OutputSerializer(serializers.Serializer):
        uploads = UploadSerializer(many=True)

    @extend_schema(parameters=[FilterSerializer], responses=OutputSerializer)
    def get(self, request):
        query = self.FilterSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        filters = query.validated_data
        uploads = list_uploads(
            user=request.user,
            experiment=(
                selectors.get_experiment(user=request.user, experiment_id=filters["experiment_id"])
                if "experiment_id" in filters
                else None
            ),
            run=selectors.get_run(user=request.user, run_id=filters["run_id"])
            if "run_id" in filters
            else None,
            limit=filters["limit"],
        )
        return Response(self.OutputSerializer({"uploads": uploads}).data)


class UploadGetApi(ApiView):
    """One upload: its status, progress (bytes and rows done), counts, or its error and line."""

    @extend_schema(responses=UploadSerializer)
    def get(self, request, upload_id):
        return Response(UploadSerializer(get_upload(upload_id=upload_id, user=request.user)).data)
