"""A run's artifacts: list, upload (raw PUT or multipart POST), download and delete."""

from __future__ import annotations

import io
import posixpath

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from config.api import ApiView, IgnoreAcceptHeader, StrictCharField
from config.http import declared_body_size
from tracker import selectors, services
from tracker.api.serializers import ArtifactSerializer


class ArtifactListApi(ApiView):
    """A run's files (recursively under `path` when given), with size and sha256."""

    class FilterSerializer(serializers.Serializer):
        path = StrictCharField(required=False, allow_blank=True, help_text="A folder prefix.")

    class OutputSerializer(serializers.Serializer):
        artifacts = ArtifactSerializer(many=True)

    @extend_schema(parameters=[FilterSerializer], responses=OutputSerializer)
    def get(self, request, run_id):
        query = self.FilterSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        run = selectors.get_run(user=request.user, run_id=run_id)
        artifacts = selectors.list_artifacts(run=run, prefix=query.validated_data.get("path", ""))
        return Response(self.OutputSerializer({"artifacts": artifacts}, context={"run": run}).data)


class ArtifactUploadApi(ApiView):
    """Upload a file as multipart form data; `path` defaults to the file's name."""

    parser_classes = [MultiPartParser]

    class InputSerializer(serializers.Serializer):
        file = serializers.FileField(allow_empty_file=True, use_url=False)
        path = StrictCharField(required=False, trim_whitespace=False)

    @extend_schema(request={"multipart/form-data": InputSerializer}, responses={201: ArtifactSerializer})
    def post(self, request, run_id):
        body = self.InputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        upload = body.validated_data["file"]
        run = selectors.get_run(user=request.user, run_id=run_id)
        artifact = services.store_artifact(
            actor=request.user,
            owner=run,
            path=body.validated_data.get("path", upload.name),
            content=upload,
            declared_size=upload.size,
        )
        data = ArtifactSerializer(artifact, context={"run": run}).data
        return Response(data, status=status.HTTP_201_CREATED)


class ArtifactPutApi(ApiView):
    """Upload the raw request body as the file at `path`, replacing any file already there."""

    @extend_schema(
        request={"application/octet-stream": OpenApiTypes.BINARY}, responses={201: ArtifactSerializer}
    )
    def put(self, request, run_id, path):
        run = selectors.get_run(user=request.user, run_id=run_id)
        # The body is the file whatever its Content-Type, so no parser gets to interpret it; the
        # service reads it (request.stream is None when the body is empty).
        artifact = services.store_artifact(
            actor=request.user,
            owner=run,
            path=path,
            content=request.stream or io.BytesIO(),
            declared_size=declared_body_size(request),
        )
        data = ArtifactSerializer(artifact, context={"run": run}).data
        return Response(data, status=status.HTTP_201_CREATED)


class ArtifactDownloadApi(ApiView):
    """The file's bytes, as an attachment; its ETag is its sha256."""

    content_negotiation_class = IgnoreAcceptHeader

    @extend_schema(
        responses={(200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY)},
    )
    def get(self, request, run_id, path):
        artifact = selectors.get_artifact(run=selectors.get_run(user=request.user, run_id=run_id), path=path)
        # Always an attachment: an uploaded HTML file must never render on this origin.
        response = FileResponse(
            artifact.file.open("rb"), as_attachment=True, filename=posixpath.basename(artifact.path)
        )
        response["ETag"] = f'"{artifact.sha256}"'
        return response


class ArtifactDeleteApi(ApiView):
    """Remove a file, or every file under a folder path."""

    @extend_schema(responses={204: None})
    def delete(self, request, run_id, path):
        services.delete_artifact(
            actor=request.user, owner=selectors.get_run(user=request.user, run_id=run_id), path=path
        )
        return Response(status=status.HTTP_204_NO_CONTENT)
