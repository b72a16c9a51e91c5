"""The registry in Django's admin: browse only, plus actions that call the same services as every
other path (restore, review), so the admin cannot bypass a rule the APIs enforce."""

from django.contrib import admin, messages

from config.admin import ReadOnlyAdmin, ReadOnlyInline
from config.exceptions import ApplicationError

from . import services
from .models import (
    AliasHistory,
    ModelAlias,
    ModelVersion,
    ModelVersionTag,
    PromotionPolicy,
    PromotionRequest,
    RegisteredModel,
    RegisteredModelTag,
    Review,
)


def _each(modeladmin, request, queryset, call, done: str) -> None:
    """Run `call(obj)` per selected row; a refusal is shown as the service worded it."""
    for obj in queryset:
        try:
            call(obj)
        except ApplicationError as error:
            modeladmin.message_user(request, f"{obj}: {error}", level=messages.ERROR)
        else:
            modeladmin.message_user(request, f"{obj}: {done}", level=messages.SUCCESS)


class RegisteredModelTagInline(ReadOnlyInline):
    model = RegisteredModelTag


class ModelAliasInline(ReadOnlyInline):
    model = ModelAlias


@admin.register(RegisteredModel)
class RegisteredModelAdmin(ReadOnlyAdmin):
    list_display = ["name", "created_at", "updated_at", "deleted_at"]
    list_filter = [("deleted_at", admin.EmptyFieldListFilter)]
    search_fields = ["name"]
    inlines = [RegisteredModelTagInline, ModelAliasInline]
    actions = ["restore"]

    def get_queryset(self, request):
        return RegisteredModel.all_objects.all()

    @admin.action(description="Restore the selected deleted models")
    def restore(self, request, queryset):
        def restore(model):
            services.restore_registered_model(actor=request.user, model=model)

        _each(self, request, queryset, restore, "restored")


class ModelVersionTagInline(ReadOnlyInline):
    model = ModelVersionTag


@admin.register(ModelVersion)
class ModelVersionAdmin(ReadOnlyAdmin):
    list_display = ["model", "version", "run", "stage", "created_by", "created_at", "deleted_at"]
    list_filter = ["stage", ("deleted_at", admin.EmptyFieldListFilter)]
    search_fields = ["model__name", "run__uuid"]
    list_select_related = ["model", "run", "created_by"]
    inlines = [ModelVersionTagInline]
    actions = ["restore"]

    def get_queryset(self, request):
        return ModelVersion.all_objects.all()

    @admin.action(description="Restore the selected deleted versions")
    def restore(self, request, queryset):
        def restore(version):
            services.restore_model_version(actor=request.user, version=version)

        _each(self, request, queryset, restore, "restored")


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
        "request",
    ]
    list_filter = ["kind"]
    list_select_related = ["model", "version", "assigned_by", "removed_by", "request"]


@admin.register(PromotionPolicy)
class PromotionPolicyAdmin(ReadOnlyAdmin):
    list_display = ["model", "protected_aliases", "required_approvals", "review_role", "updated_by"]
    list_select_related = ["model", "updated_by"]


class ReviewInline(ReadOnlyInline):
    model = Review


@admin.register(PromotionRequest)
class PromotionRequestAdmin(ReadOnlyAdmin):
    list_display = ["id", "model", "version", "label_kind", "label_name", "status", "requester", "forced"]
    list_filter = ["status", "forced", "label_kind"]
    list_select_related = ["model", "version", "requester"]
    inlines = [ReviewInline]
    actions = ["approve"]

    @admin.action(description="Approve the selected requests (as yourself)")
    def approve(self, request, queryset):
        def approve(promotion):
            # The service decides: the requester and the run's author are refused here as anywhere.
            services.review_promotion(
                actor=request.user,
                request=promotion,
                decision="approve",
                comment="Approved in the admin site.",
            )

        _each(self, request, queryset.select_related("model", "version__run"), approve, "approved")
