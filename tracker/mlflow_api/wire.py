"""MLflow's JSON shapes for experiments, runs and metrics, built (and read) in this one place.

Protobuf JSON rules apply: ids declared as strings are strings, times are integer
milliseconds, NaN and ±Infinity are spelled as strings, and unset fields are left out.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from config.epoch import MAX_EPOCH_MS, from_ms, to_ms
from config.exceptions import InvalidInput
from config.inputs import TagInput
from config.json_values import json_float
from tracker.models import Experiment, Lifecycle, Run
from tracker.selectors import RunData

from .protocol import Call, invalid, missing, omit_empty

DATASET_CONTEXT_TAG = "mlflow.data.context"
T = TypeVar("T")

# ViewType (service.proto), by the name clients send.
_VIEW_TYPES: dict[str, str | None] = {
    "ACTIVE_ONLY": Lifecycle.ACTIVE,
    "DELETED_ONLY": Lifecycle.DELETED,
    "ALL": None,
}


def optional_datetime(call: Call, name: str) -> datetime | None:
    """A field of integer milliseconds since the epoch as a datetime; None when not sent."""
    value = call.integer(name)
    if value is None:
        return None
    if not 0 <= value <= MAX_EPOCH_MS:
        raise InvalidInput(f"must be milliseconds since the epoch, from 0 to {MAX_EPOCH_MS}", field=name)
    return from_ms(value)


def lifecycle_filter(call: Call, name: str) -> str | None:
    """MLflow's view type as the lifecycle to filter on (None: every lifecycle)."""
    value = call.string(name, default="ACTIVE_ONLY")
    if value not in _VIEW_TYPES:
        raise InvalidInput(f"{value[:100]!r} is not one of {', '.join(_VIEW_TYPES)}", field=name)
    return _VIEW_TYPES[value]


def key_value_inputs(call: Call, name: str, factory: Callable[[str, str], T]) -> list[T]:
    """`[{key, value}]` as ParamInputs or TagInputs (protobuf JSON may leave out an empty value);
    the services check key syntax and lengths."""
    pairs = []
    for index, item in enumerate(call.objects(name)):
        key, value = item.get("key"), item.get("value", "")
        if key is None:
            raise missing(f"{name}[{index}].key")
        if not isinstance(key, str):
            raise invalid(f"{name}[{index}].key", key)
        if not isinstance(value, str):
            raise invalid(f"{name}[{index}].value", value)
        pairs.append(factory(key, value))
    return pairs


def tag_inputs(call: Call, name: str = "tags") -> list[TagInput]:
    return key_value_inputs(call, name, TagInput)


def key_values(items: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": key, "value": value} for key, value in items.items()]


def experiment(experiment: Experiment) -> dict[str, Any]:
    """An Experiment message; its tags should be prefetched when many are rendered."""
    return omit_empty(
        {
            "experiment_id": str(experiment.pk),
            "name": experiment.name,
            "artifact_location": experiment.artifact_location or f"mlflow-artifacts:/{experiment.pk}",
            "lifecycle_stage": experiment.lifecycle,
            "creation_time": to_ms(experiment.created_at),
            "last_update_time": to_ms(experiment.updated_at),
            "tags": [{"key": tag.key, "value": tag.value} for tag in experiment.tags.all()],
        }
    )


# The Run fields run_info reads: a search loads only these (and the user's name).
RUN_INFO_FIELDS = (
    "uuid", "name", "experiment_id", "user_id", "status", "start_time", "end_time", "artifact_uri",
    "lifecycle",
)  # fmt: skip


def run_info(run: Run) -> dict[str, Any]:
    """A RunInfo message; the user is the authenticated owner, whatever the client claimed."""
    return omit_empty(
        {
            "run_id": run.uuid,
            "run_uuid": run.uuid,
            "run_name": run.name,
            "experiment_id": str(run.experiment_id),
            "user_id": run.user.username if run.user_id is not None else None,
            "status": run.status,
            "start_time": to_ms(run.start_time),
            "end_time": to_ms(run.end_time) if run.end_time is not None else None,
            "artifact_uri": run.artifact_uri,
            "lifecycle_stage": run.lifecycle,
        }
    )


def metric(key: str, value: float, timestamp: int, step: int) -> dict[str, Any]:
    return {"key": key, "value": json_float(value), "timestamp": timestamp, "step": step}


def _input_tags(dataset: Any) -> list[dict[str, str]]:
    """The input tags as logged; a dataset logged without them (the native API) still says its
    context the way MLflow does."""
    tags = list(dataset.tags)
    if dataset.context and not any(tag["key"] == DATASET_CONTEXT_TAG for tag in tags):
        tags.insert(0, {"key": DATASET_CONTEXT_TAG, "value": dataset.context})
    return tags


def _dataset_input(dataset: Any) -> dict[str, Any]:
    return omit_empty(
        {
            "tags": _input_tags(dataset),
            "dataset": omit_empty(
                {
                    "name": dataset.name,
                    "digest": dataset.digest,
                    "source_type": dataset.source_type,
                    "source": dataset.source,
                    "schema": dataset.schema,
                    "profile": dataset.profile,
                }
            ),
        }
    )


def run(data: RunData) -> dict[str, Any]:
    """A Run message with all four parts, as MLflow's server always sends them."""
    return {
        "info": run_info(data.run),
        "data": omit_empty(
            {
                "metrics": [
                    metric(m.key, m.display_value, m.timestamp, m.step) for m in data.metrics.values()
                ],
                "params": key_values(data.params),
                "tags": key_values(data.tags),
            }
        ),
        "inputs": omit_empty(
            {
                "dataset_inputs": [_dataset_input(d) for d in data.datasets],
                "model_inputs": [{"model_id": model_id} for model_id in data.model_inputs],
            }
        ),
        "outputs": omit_empty(
            {"model_outputs": [{"model_id": model_id, "step": step} for model_id, step in data.model_outputs]}
        ),
    }
