"""Registered models, their versions, aliases, stages and alias history."""

from __future__ import annotations

from typing import Any

from django.db.models import prefetch_related_objects
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from accounts.authentication import ChecksTokenInStatement
from accounts.callers import user_of
from config.api import ApiView, StrictCharField
from registry import selectors, services
from registry.api.serializers import ModelVersionSerializer, RegisteredModelSerializer
from tracker.api.serializers import KeyValueSerializer, tag_inputs
from tracker.selectors import get_run_ref


def _model(user: Any, name: str):
    model = selectors.get_registered_model(user=user, name=name)
    prefetch_related_objects([model], "aliases__version", "tags")
    return model


def _version(user: Any, name: str, version: str):
    found = selectors.get_model_version(
        model=selectors.get_registered_model(user=user, name=name), version=version
    )
    prefetch_related_objects([found], "created_by", "aliases", "tags")
    return found


class ModelListApi(ApiView):
    """Every registered model, by name, with its aliases and version count."""

    class OutputSerializer(serializers.Serializer):
        class ItemSerializer(RegisteredModelSerializer):
            version_count = serializers.IntegerField()

        models = ItemSerializer(many=True)

    @extend_schema(responses=OutputSerializer)
    def get(self, request):
        return Response(
            self.OutputSerializer({"models": selectors.list_registered_models(user=request.user)}).data
        )


class ModelCreateApi(ApiView):
    """Register a model name; versions are added to it from runs."""

    class InputSerializer(serializers.Serializer):
        name = StrictCharField(trim_whitespace=False)
        description = StrictCharField(allow_blank=True, trim_whitespace=False, default="")
        tags = KeyValueSerializer(many=True, default=list)

    @extend_schema(request=InputSerializer, responses={201: RegisteredModelSerializer})
    def post(self, request):
        body = self.InputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        model = services.create_registered_model(
            actor=request.user,
            name=data["name"],
            description=data["description"],
            tags=tag_inputs(data["tags"]),
        )
        return Response(RegisteredModelSerializer(model).data, status=status.HTTP_201_CREATED)


class ModelGetApi(ApiView):
    """One registered model with its tags and aliases."""

    @extend_schema(responses=RegisteredModelSerializer)
    def get(self, request, name):
        return Response(RegisteredModelSerializer(_model(request.user, name)).data)


class ModelUpdateApi(ApiView):
    """Change a model's description, rename it, or both."""

    class InputSerializer(serializers.Serializer):
        description = StrictCharField(allow_blank=True, trim_whitespace=False, required=False)
        new_name = StrictCharField(trim_whitespace=False, required=False)

        def validate(self, attrs):
            if not attrs:
                raise serializers.ValidationError("give a description, a new_name or both")
            return attrs

    @extend_schema(request=InputSerializer, responses=RegisteredModelSerializer)
    def patch(self, request, name):
        body = self.InputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        model = _model(request.user, name)
        model = services.update_registered_model(
            actor=request.user,
            model=model,
            description=data.get("description"),
            new_name=data.get("new_name"),
        )
        return Response(RegisteredModelSerializer(model).data)


class ModelDeleteApi(ApiView):
    """Delete (hide) a model with its versions; history stays and an admin can restore it. A 409
    while it holds a protected alias."""

    @extend_schema(responses={204: None})
    def delete(self, request, name):
        services.delete_registered_model(
            actor=request.user, model=selectors.get_registered_model(user=request.user, name=name)
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class ModelRestoreApi(ApiView):
    """Bring back the most recently deleted model of that name, with the versions deleted with
    it; admins only, and only while no other model has the name."""

    @extend_schema(request=None, responses=RegisteredModelSerializer)
    def post(self, request, name):
        model = services.restore_registered_model(
            actor=request.user, model=selectors.get_deleted_registered_model(name=name)
        )
        return Response(RegisteredModelSerializer(_model(request.user, model.name)).data)


class ModelVersionListApi(ApiView):
    """A model's versions, newest first."""

    class OutputSerializer(serializers.Serializer):
        versions = ModelVersionSerializer(many=True)

    @extend_schema(responses=OutputSerializer)
    def get(self, request, name):
        model = selectors.get_registered_model(user=request.user, name=name)
        return Response(self.OutputSerializer({"versions": selectors.list_model_versions(model=model)}).data)


class ModelVersionCreateApi(ChecksTokenInStatement, ApiView):
    """Register a run's model as the model's next version; the run is its evidence."""

    class InputSerializer(serializers.Serializer):
        run_id = StrictCharField()
        source = StrictCharField(
            allow_blank=True, default="", help_text="Artifact path of the model; defaults to <run>/model."
        )
        description = StrictCharField(allow_blank=True, trim_whitespace=False, default="")
        tags = KeyValueSerializer(many=True, default=list)

    @extend_schema(request=InputSerializer, responses={201: ModelVersionSerializer})
    def post(self, request, name):
        data = _plain_version_body(request.data)
        if data is None:
            body = self.InputSerializer(data=request.data)
            body.is_valid(raise_exception=True)
            data = body.validated_data
        version = services.create_model_version_from(
            actor=request.caller,  # the one statement checks a bearer token itself
            model_name=name,
            run_id=data["run_id"],
            find=lambda: (
                selectors.get_registered_model(user=user_of(request.caller), name=name),
                get_run_ref(run_id=data["run_id"], user=user_of(request.caller)),
                None,
            ),
            source=data["source"],
            description=data["description"],
            tags=tag_inputs(data["tags"]),
        )
        # Known without asking: a version made just now has no aliases, and no tags unless it
        # was given some. (Empty querysets put in their place, and the related managers that
        # handed them over, were 5 % of a registration's instructions.)
        answer = ModelVersionSerializer(version, context={"bare": not data["tags"]})
        return Response(answer.data, status=status.HTTP_201_CREATED)


def _plain_version_body(data: Any) -> dict[str, Any] | None:
    """`ModelVersionCreateApi.InputSerializer`'s validated data for the commonest body, read
    without it: every field a plain ASCII string the serializer would keep as it is (the run id
    not blank, nothing to trim where it trims, no NUL) and no tags. Registering is what a training
    pipeline does after every run, and the serializer's per-request copies of its fields cost
    about 0.15 ms of it (bench/README.md). Any other body gives None and goes through the
    serializer, which words every error as the other views do."""
    if type(data) is not dict or data.get("tags", []) != []:
        return None
    fields = {
        "run_id": data.get("run_id"),
        "source": data.get("source", ""),
        "description": data.get("description", ""),
    }
    for value in fields.values():
        if type(value) is not str or not value.isascii() or "\x00" in value:
            return None
    run_id, source = fields["run_id"], fields["source"]
    if not run_id or run_id != run_id.strip() or source != source.strip():
        return None
    return {**fields, "tags": []}


class ModelVersionGetApi(ApiView):
    """One version of a model."""

    @extend_schema(responses=ModelVersionSerializer)
    def get(self, request, name, version):
        return Response(ModelVersionSerializer(_version(request.user, name, version)).data)


class ModelVersionUpdateApi(ApiView):
    """Change a version's description."""

    class InputSerializer(serializers.Serializer):
        description = StrictCharField(allow_blank=True, trim_whitespace=False)

    @extend_schema(request=InputSerializer, responses=ModelVersionSerializer)
    def patch(self, request, name, version):
        body = self.InputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        found = services.update_model_version(
            actor=request.user,
            version=_version(request.user, name, version),
            description=body.validated_data["description"],
        )
        return Response(ModelVersionSerializer(found).data)


class ModelVersionDeleteApi(ApiView):
    """Delete (hide) one version; its unprotected aliases are removed, its pending requests closed,
    its history kept. A 409 while it holds a protected alias."""

    @extend_schema(responses={204: None})
    def delete(self, request, name, version):
        services.delete_model_version(actor=request.user, version=_version(request.user, name, version))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ModelVersionRestoreApi(ApiView):
    """Bring back a deleted version (without the aliases it lost); admins only."""

    @extend_schema(request=None, responses=ModelVersionSerializer)
    def post(self, request, name, version):
        model = selectors.get_registered_model(user=request.user, name=name)
        found = selectors.get_deleted_model_version(model=model, version=version)
        services.restore_model_version(actor=request.user, version=found)
        return Response(ModelVersionSerializer(_version(request.user, name, found.version)).data)


class ModelVersionStageApi(ApiView):
    """Move a version to a legacy stage (None, Staging, Production, Archived)."""

    class InputSerializer(serializers.Serializer):
        stage = StrictCharField(help_text="Case-insensitive.")
        archive_existing_versions = serializers.BooleanField(
            default=False, help_text="Archive the versions now in that stage (Staging or Production)."
        )

    @extend_schema(request=InputSerializer, responses=ModelVersionSerializer)
    def post(self, request, name, version):
        body = self.InputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        found = services.transition_stage(
            actor=request.user,
            version=_version(request.user, name, version),
            stage=body.validated_data["stage"],
            archive_existing_versions=body.validated_data["archive_existing_versions"],
        )
        return Response(ModelVersionSerializer(found).data)


class ModelAliasListApi(ApiView):
    """A model's aliases and the versions they point at."""

    class OutputSerializer(serializers.Serializer):
        class ItemSerializer(serializers.Serializer):
            alias = StrictCharField()
            version = serializers.IntegerField(source="version.version")
            updated_at = serializers.DateTimeField()

        aliases = ItemSerializer(many=True)

    @extend_schema(responses=OutputSerializer)
    def get(self, request, name):
        return Response(self.OutputSerializer({"aliases": _model(request.user, name).aliases.all()}).data)


class ModelAliasGetApi(ApiView):
    """The version an alias points at."""

    @extend_schema(responses=ModelVersionSerializer)
    def get(self, request, name, alias):
        model = selectors.get_registered_model(user=request.user, name=name)
        version = selectors.get_version_by_alias(model=model, alias=alias)
        prefetch_related_objects([version], "created_by", "aliases", "tags")
        return Response(ModelVersionSerializer(version).data)


class ModelAliasSetApi(ApiView):
    """Point an alias at a version, creating or moving it; the move is recorded in alias-history."""

    class InputSerializer(serializers.Serializer):
        version = serializers.IntegerField(min_value=1)

    @extend_schema(request=InputSerializer, responses=ModelVersionSerializer)
    def put(self, request, name, alias):
        body = self.InputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        model = selectors.get_registered_model(user=request.user, name=name)
        version = selectors.get_model_version(model=model, version=body.validated_data["version"])
        services.set_alias(actor=request.user, model=model, alias=alias, version=version)
        return Response(ModelVersionSerializer(_version(request.user, name, version.version)).data)


class ModelAliasDeleteApi(ApiView):
    """Remove an alias; the version stays."""

    @extend_schema(responses={204: None})
    def delete(self, request, name, alias):
        services.delete_alias(
            actor=request.user,
            model=selectors.get_registered_model(user=request.user, name=name),
            alias=alias,
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class AliasHistoryApi(ApiView):
    """Which version held each alias and stage, from when until when, moved by whom; newest first."""

    class OutputSerializer(serializers.Serializer):
        class ItemSerializer(serializers.Serializer):
            kind = StrictCharField(help_text="alias or stage")
            name = StrictCharField()
            version = serializers.IntegerField(source="version.version")
            assigned_at = serializers.DateTimeField()
            assigned_by = StrictCharField(source="assigned_by.username", allow_null=True)
            removed_at = serializers.DateTimeField(allow_null=True)
            removed_by = StrictCharField(source="removed_by.username", allow_null=True)

        history = ItemSerializer(many=True)

    @extend_schema(responses=OutputSerializer)
    def get(self, request, name):
        model = selectors.get_registered_model(user=request.user, name=name)
        return Response(self.OutputSerializer({"history": selectors.alias_history(model=model)}).data)
