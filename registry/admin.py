from django.contrib import admin

from config.admin import ReadOnlyAdmin, ReadOnlyInline

from .models import (
    AliasHistory,
    ModelAlias,
    ModelVersion,
    ModelVersionTag,
    RegisteredModel,
    RegisteredModelTag,
)


class RegisteredModelTagInline(ReadOnlyInline):
    model = RegisteredModelTag


class ModelAliasInline(ReadOnlyInline):
    model = ModelAlias


@admin.register(RegisteredModel)
class RegisteredModelAdmin(ReadOnlyAdmin):
    list_display = ["name", "created_at", "updated_at"]
    search_fields = ["name"]
    inlines = [RegisteredModelTagInline, ModelAliasInline]


class ModelVersionTagInline(ReadOnlyInline):
    model = ModelVersionTag


@admin.register(ModelVersion)
class ModelVersionAdmin(ReadOnlyAdmin):
    list_display = ["model", "version", "run", "stage", "created_by", "created_at"]
    list_filter = ["stage"]
    search_fields = ["model__name", "run__uuid"]
    list_select_related = ["model", "run", "created_by"]
    inlines = [ModelVersionTagInline]


@admin.register(AliasHistory)
class AliasHistoryAdmin(ReadOnlyAdmin):
    list_display = [
        "model",
        "kind",
        "name",
        "version",
        "assigned_at",
        "assigned_by",
        "removed_at",
        "removed_by",
    ]
    list_filter = ["kind"]
    list_select_related = ["model", "version", "assigned_by", "removed_by"]
