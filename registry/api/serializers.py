"""Shapes of registered models and versions, shared by several registry API views."""

from __future__ import annotations

from rest_framework import serializers

from registry.models import Stage


class RegisteredModelSerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
    tags = serializers.SerializerMethodField()
    aliases = serializers.SerializerMethodField(help_text="Alias name → version number.")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_tags(self, model) -> dict[str, str]:
        return {tag.key: tag.value for tag in model.tags.all()}

    def get_aliases(self, model) -> dict[str, int]:
        return {alias.alias: alias.version.version for alias in model.aliases.all()}


class ModelVersionSerializer(serializers.Serializer):
    name = serializers.CharField(source="model.name")
    version = serializers.IntegerField()
    run_id = serializers.CharField(source="run.uuid")
    experiment_id = serializers.IntegerField(source="run.experiment_id")
    source = serializers.CharField()
    description = serializers.CharField()
    stage = serializers.ChoiceField(choices=Stage.choices)
    aliases = serializers.SerializerMethodField()
    tags = serializers.SerializerMethodField()
    created_by = serializers.CharField(source="created_by.username", allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_aliases(self, version) -> list[str]:
        return sorted(alias.alias for alias in version.aliases.all())

    def get_tags(self, version) -> dict[str, str]:
        return {tag.key: tag.value for tag in version.tags.all()}
