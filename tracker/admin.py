from django.contrib import admin

from config.admin import ReadOnlyAdmin, ReadOnlyInline

from .models import (
    Artifact,
    DatasetInput,
    Experiment,
    ExperimentTag,
    LoggedModel,
    LoggedModelMetric,
    LoggedModelParam,
    LoggedModelTag,
    MetricKey,
    MetricSummary,
    Param,
    Run,
    RunModelLink,
    Tag,
)


class ExperimentTagInline(ReadOnlyInline):
    model = ExperimentTag


@admin.register(Experiment)
class ExperimentAdmin(ReadOnlyAdmin):
    list_display = ["id", "name", "lifecycle", "created_at", "updated_at"]
    list_filter = ["lifecycle"]
    search_fields = ["name"]
    inlines = [ExperimentTagInline]


class ParamInline(ReadOnlyInline):
    model = Param


class TagInline(ReadOnlyInline):
    model = Tag


class DatasetInputInline(ReadOnlyInline):
    model = DatasetInput
    fields = ["name", "version", "digest", "context", "source"]
    readonly_fields = fields


class ArtifactInline(ReadOnlyInline):
    model = Artifact
    fields = ["path", "size", "sha256", "created_at"]
    readonly_fields = fields


class MetricSummaryInline(ReadOnlyInline):
    model = MetricSummary
    fields = ["key", "last_value", "last_step", "min_value", "max_value", "count"]
    readonly_fields = fields


@admin.register(Run)
class RunAdmin(ReadOnlyAdmin):
    list_display = ["uuid", "name", "experiment", "status", "user", "start_time", "end_time", "lifecycle"]
    list_filter = ["status", "lifecycle", "experiment"]
    search_fields = ["uuid", "name"]
    list_select_related = ["experiment", "user"]
    inlines = [ParamInline, TagInline, MetricSummaryInline, DatasetInputInline, ArtifactInline]


@admin.register(MetricKey)
class MetricKeyAdmin(ReadOnlyAdmin):
    list_display = ["id", "name"]
    search_fields = ["name"]


@admin.register(DatasetInput)
class DatasetInputAdmin(ReadOnlyAdmin):
    list_display = ["name", "version", "digest", "context", "run"]
    search_fields = ["name", "digest", "version"]
    list_select_related = ["run"]


@admin.register(Artifact)
class ArtifactAdmin(ReadOnlyAdmin):
    list_display = ["path", "run", "logged_model", "size", "sha256", "created_at"]
    search_fields = ["path", "sha256"]
    list_select_related = ["run", "logged_model"]


class LoggedModelParamInline(ReadOnlyInline):
    model = LoggedModelParam


class LoggedModelTagInline(ReadOnlyInline):
    model = LoggedModelTag


class LoggedModelMetricInline(ReadOnlyInline):
    model = LoggedModelMetric
    fields = ["key", "value", "is_nan", "step", "timestamp", "dataset_name", "dataset_digest", "run"]
    readonly_fields = fields


class RunModelLinkInline(ReadOnlyInline):
    model = RunModelLink
    fields = ["run", "direction", "step"]
    readonly_fields = fields


@admin.register(LoggedModel)
class LoggedModelAdmin(ReadOnlyAdmin):
    list_display = [
        "model_id", "name", "experiment", "status", "source_run", "creator", "created_at", "lifecycle"
    ]  # fmt: skip
    list_filter = ["status", "lifecycle", "experiment"]
    search_fields = ["model_id", "name"]
    list_select_related = ["experiment", "source_run", "creator"]
    inlines = [
        LoggedModelParamInline,
        LoggedModelTagInline,
        LoggedModelMetricInline,
        RunModelLinkInline,
        ArtifactInline,
    ]
