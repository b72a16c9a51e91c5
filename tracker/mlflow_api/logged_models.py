"""MLflow endpoints: MLflow 3's logged models (what every `mlflow.<flavor>.log_model` creates)."""

from __future__ import annotations

from typing import Any

from config.epoch import to_ms
from config.exceptions import InvalidInput
from config.json_values import json_float
from tracker import selectors, services
from tracker.search.logged_models import DatasetFilter, ModelOrder
from tracker.selectors import ArtifactEntry, LoggedModelDetails, ModelMetricValue
from tracker.services import ParamInput
from tracker.validation import validate_artifact_path, validate_text

from .protocol import Call, Endpoint, omit_empty
from .wire import key_value_inputs, key_values, tag_inputs

DEFAULT_SEARCH_RESULTS = 100  # MLflow's SEARCH_LOGGED_MODEL_MAX_RESULTS_DEFAULT
MAX_NESTED_TEXT_LENGTH = 500  # a dataset name's limit; metric keys and digests are shorter


def _text(item: dict[str, Any], name: str, field: str) -> str:
    """A string field of a nested message (a dataset, an order_by clause); absent means ""."""
    return validate_text(item.get(name), field=field, max_length=MAX_NESTED_TEXT_LENGTH)


def _metric(point: ModelMetricValue, model_id: str) -> dict[str, Any]:
    return omit_empty(
        {
            "key": point.key,
            "value": json_float(point.value),
            "timestamp": point.timestamp,
            "step": point.step,
            "dataset_name": point.dataset_name,
            "dataset_digest": point.dataset_digest,
            "model_id": model_id,
            "run_id": point.run_id,
        }
    )


def logged_model_message(details: LoggedModelDetails) -> dict[str, Any]:
    """A LoggedModel message: `info` (identity, status, tags) and `data` (params, metrics)."""
    model = details.model
    return {
        "info": omit_empty(
            {
                "model_id": model.model_id,
                "experiment_id": str(model.experiment_id),
                "name": model.name,
                "creation_timestamp_ms": to_ms(model.created_at),
                "last_updated_timestamp_ms": to_ms(model.updated_at),
                "artifact_uri": model.artifact_uri,
                "status": model.status,
                "creator_id": model.creator_id,  # an int64 in the proto: the user's id
                "model_type": model.model_type,
                "source_run_id": details.source_run_id,
                "status_message": model.status_message,
                "tags": key_values(details.tags),
            }
        ),
        "data": omit_empty(
            {
                "params": key_values(details.params),
                "metrics": [_metric(point, model.model_id) for point in details.metrics],
            }
        ),
    }


def _model_response(model: Any) -> dict[str, Any]:
    return {"model": logged_model_message(selectors.logged_model_details([model])[0])}


def file_info(entry: ArtifactEntry, path: str) -> dict[str, Any]:
    """A FileInfo; `is_dir` is always sent, because the client reads it without a default."""
    return omit_empty({"path": path, "is_dir": entry.is_dir, "file_size": entry.size})


def create_logged_model(call: Call) -> dict[str, Any]:
    experiment = selectors.get_experiment(
        user=call.user, experiment_id=call.string("experiment_id", required=True)
    )
    source_run_id = call.string("source_run_id")
    model = services.create_logged_model(
        actor=call.user,
        experiment=experiment,
        name=call.string("name"),
        model_type=call.string("model_type"),
        source_run=selectors.get_source_run(run_id=source_run_id) if source_run_id else None,
        params=key_value_inputs(call, "params", ParamInput),
        tags=tag_inputs(call),
    )
    return _model_response(model)


def get_logged_model(call: Call, model_id: str) -> dict[str, Any]:
    model = selectors.get_logged_model(
        user=call.user, model_id=model_id, allow_deleted=call.boolean("allow_deleted")
    )
    return _model_response(model)


def finalize_logged_model(call: Call, model_id: str) -> dict[str, Any]:
    model = services.finalize_logged_model(
        actor=call.user,
        model=selectors.get_logged_model(user=call.user, model_id=model_id, allow_deleted=True),
        status=call.string("status", required=True),
    )
    return _model_response(model)


def delete_logged_model(call: Call, model_id: str) -> dict[str, Any]:
    model = selectors.get_logged_model(user=call.user, model_id=model_id, allow_deleted=True)
    services.delete_logged_model(actor=call.user, model=model)
    return {}


def _datasets(call: Call) -> list[DatasetFilter]:
    datasets = []
    for index, item in enumerate(call.objects("datasets")):
        name = _text(item, "dataset_name", f"datasets[{index}].dataset_name")
        if not name:
            raise InvalidInput("`dataset_name` must be specified", field=f"datasets[{index}].dataset_name")
        datasets.append(
            DatasetFilter(name, _text(item, "dataset_digest", f"datasets[{index}].dataset_digest"))
        )
    return datasets


def _orders(call: Call) -> list[ModelOrder]:
    orders = []
    for index, item in enumerate(call.objects("order_by")):
        where = f"order_by[{index}]"
        field_name = _text(item, "field_name", f"{where}.field_name")
        if not field_name:
            raise InvalidInput("`field_name` must be specified", field=f"{where}.field_name")
        ascending = item.get("ascending", True)
        if not isinstance(ascending, bool):
            raise InvalidInput(f"must be true or false, not {ascending!r}"[:200], field=f"{where}.ascending")
        orders.append(
            ModelOrder(
                field_name,
                ascending,
                _text(item, "dataset_name", f"{where}.dataset_name"),
                _text(item, "dataset_digest", f"{where}.dataset_digest"),
            )
        )
    return orders


def search_logged_models(call: Call) -> dict[str, Any]:
    page = selectors.search_logged_models(
        user=call.user,
        experiment_ids=call.strings("experiment_ids"),
        filter_string=call.string("filter"),
        datasets=_datasets(call),
        orders=_orders(call),
        max_results=call.integer("max_results", default=DEFAULT_SEARCH_RESULTS),
        page_token=call.string("page_token") or None,
    )
    return omit_empty(
        {
            "models": [logged_model_message(details) for details in page.models],
            "next_page_token": page.next_page_token,
        }
    )


def set_logged_model_tags(call: Call, model_id: str) -> dict[str, Any]:
    model = selectors.get_logged_model(user=call.user, model_id=model_id, allow_deleted=True)
    services.set_logged_model_tags(actor=call.user, model=model, tags=tag_inputs(call))
    return {}


def delete_logged_model_tag(call: Call, model_id: str, tag_key: str) -> dict[str, Any]:
    model = selectors.get_logged_model(user=call.user, model_id=model_id, allow_deleted=True)
    services.delete_logged_model_tag(actor=call.user, model=model, key=tag_key)
    return {}


def log_logged_model_params(call: Call, model_id: str) -> dict[str, Any]:
    model = selectors.get_logged_model(user=call.user, model_id=model_id, allow_deleted=True)
    services.log_logged_model_params(
        actor=call.user, model=model, params=key_value_inputs(call, "params", ParamInput)
    )
    return {}


def list_logged_model_artifacts(call: Call, model_id: str) -> dict[str, Any]:
    """One folder level of the model's files; paths are relative to the model's artifact root."""
    model = selectors.get_logged_model(user=call.user, model_id=model_id)
    folder = call.string("artifact_directory_path")
    if folder:
        folder = validate_artifact_path(folder, field="artifact_directory_path")
    entries = selectors.artifact_directory(owner=model, path=folder)
    return omit_empty(
        {"root_uri": model.artifact_uri, "files": [file_info(entry, entry.path) for entry in entries]}
    )


ENDPOINTS: list[Endpoint] = [
    Endpoint("POST", "logged-models", create_logged_model),
    Endpoint("POST", "logged-models/search", search_logged_models),
    Endpoint("GET", "logged-models/<str:model_id>", get_logged_model),
    Endpoint("PATCH", "logged-models/<str:model_id>", finalize_logged_model),
    Endpoint("DELETE", "logged-models/<str:model_id>", delete_logged_model),
    Endpoint("PATCH", "logged-models/<str:model_id>/tags", set_logged_model_tags),
    Endpoint("DELETE", "logged-models/<str:model_id>/tags/<path:tag_key>", delete_logged_model_tag),
    Endpoint("POST", "logged-models/<str:model_id>/params", log_logged_model_params),
    Endpoint("GET", "logged-models/<str:model_id>/artifacts/directories", list_logged_model_artifacts),
]
