"""Shapes shared by several tracker API views, and the log-batch parser for the ingestion hot path.

Times a client sends about its runs and points (start_time, end_time, timestamp) are integer
milliseconds since the epoch, as in MLflow; times the server stamps (created_at) are ISO 8601.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from config.api import StrictCharField, json_kind
from config.epoch import MAX_EPOCH_MS, from_ms, to_ms
from config.exceptions import InvalidInput
from config.inputs import TagInput
from tracker.services import MetricTuple, ParamInput


@extend_schema_field(OpenApiTypes.INT64)
class EpochMillisField(serializers.Field):
    """A datetime on the wire as integer milliseconds since 1970-01-01T00:00:00Z."""

    default_error_messages = {
        "invalid": f"must be milliseconds since the epoch, an integer from 0 to {MAX_EPOCH_MS}",
    }

    def to_internal_value(self, data: Any) -> datetime:
        if isinstance(data, float) and data.is_integer():
            data = int(data)
        if isinstance(data, bool) or not isinstance(data, int) or not 0 <= data <= MAX_EPOCH_MS:
            self.fail("invalid")
        return from_ms(data)

    def to_representation(self, value: datetime) -> int:
        return to_ms(value)


@extend_schema_field(
    {
        "oneOf": [
            {"type": "number", "format": "double"},
            {"type": "string", "enum": ["NaN", "Infinity", "-Infinity"]},
        ],
        "nullable": True,
    }
)
class MetricNumberField(serializers.Field):
    """A float that may be NaN or ±Infinity; the renderer spells those as strings."""

    def to_representation(self, value: float) -> float:
        return value

    def to_internal_value(self, data: Any) -> Any:  # pragma: no cover - output only
        return data


class KeyValueSerializer(serializers.Serializer):
    """A `{"key": ..., "value": ...}` pair; the services check key syntax and value limits."""

    key = StrictCharField(trim_whitespace=False)
    value = StrictCharField(allow_blank=True, trim_whitespace=False)


def tag_inputs(items: Sequence[dict[str, str]] | None) -> list[TagInput]:
    return [TagInput(item["key"], item["value"]) for item in items or ()]


class MetricSummarySerializer(serializers.Serializer):
    key = StrictCharField()
    value = MetricNumberField(source="display_value", help_text="The newest point's value.")
    step = serializers.IntegerField()
    timestamp = serializers.IntegerField()
    min = MetricNumberField(source="min_value", help_text="Smallest value, NaN points skipped.")
    max = MetricNumberField(source="max_value", help_text="Largest value, NaN points skipped.")
    count = serializers.IntegerField()


class DatasetSerializer(serializers.Serializer):
    name = StrictCharField()
    digest = StrictCharField()
    version = StrictCharField()
    source_type = StrictCharField()
    source = StrictCharField()
    context = StrictCharField()


class RunSerializer(serializers.Serializer):
    """A run with its params, tags, latest metrics and datasets (a `selectors.RunData`)."""

    run_id = StrictCharField(source="run.uuid")
    run_name = StrictCharField(source="run.name")
    experiment_id = serializers.IntegerField(source="run.experiment_id")
    status = StrictCharField(source="run.status")
    lifecycle = StrictCharField(source="run.lifecycle")
    start_time = EpochMillisField(source="run.start_time")
    end_time = EpochMillisField(source="run.end_time", allow_null=True)
    user = StrictCharField(source="run.user.username", allow_null=True)
    parent_run_id = StrictCharField(source="run.parent.uuid", allow_null=True)
    artifact_uri = StrictCharField(source="run.artifact_uri")
    code_commit = StrictCharField(source="run.code_commit")
    source = StrictCharField(source="run.source")
    environment = serializers.DictField(source="run.environment")
    params = serializers.DictField(child=StrictCharField())
    tags = serializers.DictField(child=StrictCharField())
    metrics = serializers.DictField(child=MetricSummarySerializer())
    datasets = DatasetSerializer(many=True)


class ExperimentSerializer(serializers.Serializer):
    experiment_id = serializers.IntegerField(source="pk")
    name = StrictCharField()
    description = StrictCharField()
    artifact_location = StrictCharField()
    lifecycle = StrictCharField()
    tags = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_tags(self, experiment) -> dict[str, str]:
        return {tag.key: tag.value for tag in experiment.tags.all()}


class ArtifactSerializer(serializers.Serializer):
    path = StrictCharField()
    size = serializers.IntegerField()
    sha256 = StrictCharField()
    created_at = serializers.DateTimeField()
    download_url = serializers.SerializerMethodField()

    def get_download_url(self, artifact) -> str:
        # The run comes from the context: every artifact listed belongs to it, and reading
        # `artifact.run` would cost a query per row.
        run_id = self.context["run"].uuid
        return reverse("tracker-api:artifact", kwargs={"run_id": run_id, "path": artifact.path})


# log-batch ------------------------------------------------------------------------------------
# The hot path: 1,000 points per request at ≥ 100 requests per second. DRF serializers would
# build and validate a field object per value; this loop only checks the shape and leaves
# values, keys and limits to `log_batch`, which names the offending field itself.

_BATCH_FIELDS = ("metrics", "params", "tags")


def _objects(data: dict[str, Any], name: str) -> list[dict[str, Any]]:
    items = data.get(name)
    if items is None:
        return []
    if type(items) is not list:
        raise InvalidInput("must be a list of objects", field=name)
    return items


def _pairs(data: dict[str, Any], name: str, factory: type) -> list[Any]:
    pairs = []
    for index, item in enumerate(_objects(data, name)):
        if type(item) is not dict:
            raise InvalidInput("must be an object", field=f"{name}[{index}]")
        try:
            key, value = item["key"], item["value"]
        except KeyError as missing:
            raise InvalidInput("is required", field=f"{name}[{index}].{missing.args[0]}") from None
        # A text field, as every text field of this API (log_batch itself takes numbers).
        if value is not None and type(value) is not str:
            raise InvalidInput(f"must be a string, not {json_kind(value)}", field=f"{name}[{index}].value")
        pairs.append(factory(key, value))
    return pairs


@dataclass(frozen=True, slots=True)
class LogBatchRequest:
    metrics: list[MetricTuple]
    params: list[ParamInput]
    tags: list[TagInput]

    @classmethod
    def parse(cls, data: Any) -> LogBatchRequest:
        if not isinstance(data, dict):
            raise InvalidInput("must be a JSON object with metrics, params and tags", field="body")
        for name in data:
            if name not in _BATCH_FIELDS:
                raise InvalidInput("is not a log-batch field (metrics, params, tags)", field=str(name))
        metrics: list[MetricTuple] = []  # plain tuples (see MetricTuple)
        append = metrics.append
        for index, item in enumerate(_objects(data, "metrics")):
            if type(item) is not dict:
                raise InvalidInput("must be an object", field=f"metrics[{index}]")
            try:
                append((item["key"], item["value"], item.get("step", 0), item.get("timestamp")))
            except KeyError as missing:
                raise InvalidInput("is required", field=f"metrics[{index}].{missing.args[0]}") from None
        return cls(metrics, _pairs(data, "params", ParamInput), _pairs(data, "tags", TagInput))

    def as_kwargs(self) -> dict[str, Any]:
        return {"metrics": self.metrics, "params": self.params, "tags": self.tags}
