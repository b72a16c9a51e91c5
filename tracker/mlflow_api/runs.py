"""MLflow endpoints: runs (create, read, update, search, delete, restore) and logging to them."""

from __future__ import annotations

import re
import time
from typing import Any

from config.exceptions import InvalidInput, NotFound
from config.inputs import TagInput
from tracker import selectors, services
from tracker.models import Run, RunModelLink
from tracker.services import DatasetSpec, MetricInput, MetricTuple, ModelMetricInput, ParamInput

from . import wire
from .protocol import Call, Endpoint, in_mlflow_words, invalid, missing, omit_empty

# MLflow's run id rule; checked before a lookup, so hostile text never reaches the database.
RUN_ID_PATTERN = re.compile(r"[a-zA-Z0-9][\w\-]{0,255}")
# Tags the mlflow client sets on runs/create that say where a run came from.
USER_TAG = "mlflow.user"
GIT_COMMIT_TAG = "mlflow.source.git.commit"
SOURCE_NAME_TAG = "mlflow.source.name"
# search_runs' page size when the client names none (MLflow's SEARCH_MAX_RESULTS_DEFAULT).
DEFAULT_MAX_RESULTS = 1000


def valid_run_id(run_id: str, field: str = "run_id") -> str:
    if not RUN_ID_PATTERN.fullmatch(run_id):
        raise InvalidInput(f"Invalid run ID {run_id[:100]!r}", field=field)
    return run_id


def run_ref(run_id: str, user: Any = None) -> Run:
    """A run without its related rows (the services lock and re-read it); MLflow's text if absent.
    With `user`, their grant on its experiment comes in the same query (selectors.get_run_ref)."""
    with in_mlflow_words(NotFound, "run_id", f"Run '{run_id}' not found"):
        return selectors.get_run_ref(run_id=valid_run_id(run_id), user=user)


def _run_ref(call: Call) -> Run:
    return run_ref(call.run_id(), call.user)


def _parent_run(user: Any, run_id: str) -> Run | None:
    """The parent the tag names, when it is a run here. MLflow takes the tag as plain text, so a
    parent on another server (or any text) is kept in the tag and the run simply has no link."""
    if not RUN_ID_PATTERN.fullmatch(run_id):
        return None
    try:
        return selectors.get_run(user=user, run_id=run_id)
    except NotFound:
        return None


def create_run(call: Call) -> dict[str, Any]:
    experiment = selectors.get_experiment(
        user=call.user, experiment_id=call.string("experiment_id", default="0")
    )
    tags = {tag.key: tag.value for tag in wire.tag_inputs(call)}
    run_name = call.string("run_name").strip()
    # As MLflow's server does, every run created here carries its name in mlflow.runName.
    if not tags.get(services.RUN_NAME_TAG, "").strip():
        tags[services.RUN_NAME_TAG] = run_name or services.generate_run_name()
    # The run belongs to the authenticated user whatever the client's user_id and mlflow.user say;
    # user_id is still checked, as MLflow's schema check does (a number is refused).
    call.string("user_id")
    tags[USER_TAG] = call.user.username
    parent_id = tags.get(services.PARENT_RUN_TAG)
    run = services.start_run(
        actor=call.user,
        experiment=experiment,
        name=run_name,
        start_time=wire.optional_datetime(call, "start_time"),
        tags=[TagInput(key, value) for key, value in tags.items()],
        parent=_parent_run(call.user, parent_id) if parent_id else None,
        code_commit=tags.get(GIT_COMMIT_TAG, ""),
        source=tags.get(SOURCE_NAME_TAG, ""),
    )
    return {"run": wire.run(selectors.run_detail(run=run, with_model_links=True))}


def get_run(call: Call) -> dict[str, Any]:
    run_id = call.run_id()
    with in_mlflow_words(NotFound, "run_id", f"Run '{run_id}' not found"):
        run = selectors.get_run(user=call.user, run_id=valid_run_id(run_id))
    return {"run": wire.run(selectors.run_detail(run=run, with_model_links=True))}


def update_run(call: Call) -> dict[str, Any]:
    run = services.update_run(
        actor=call.user,
        run=_run_ref(call),
        status=call.string("status") or None,
        end_time=wire.optional_datetime(call, "end_time"),
        name=call.string("run_name") or None,
    )
    return {"run_info": wire.run_info(run)}


def delete_run(call: Call) -> dict[str, Any]:
    services.delete_run(actor=call.user, run=_run_ref(call))
    return {}


def restore_run(call: Call) -> dict[str, Any]:
    services.restore_run(actor=call.user, run=_run_ref(call))
    return {}


def search_runs(call: Call) -> dict[str, Any]:
    max_results = call.integer("max_results", default=DEFAULT_MAX_RESULTS)
    # Over the limit is MLflow's schema error for the field, as its handler words it.
    with in_mlflow_words(InvalidInput, "max_results", invalid("max_results", max_results).message):
        page = selectors.search_runs(
            user=call.user,
            experiment_ids=call.strings("experiment_ids"),
            filter_string=call.string("filter") or None,
            order_by=call.strings("order_by"),
            max_results=max_results,
            page_token=call.string("page_token") or None,
            lifecycle=wire.lifecycle_filter(call, "run_view_type"),
            with_column_keys=False,
            with_model_links=True,
            run_fields=wire.RUN_INFO_FIELDS,
        )
    return omit_empty(
        {"runs": [wire.run(data) for data in page.runs], "next_page_token": page.next_page_token}
    )


def log_metric(call: Call) -> dict[str, Any]:
    run_id = valid_run_id(call.run_id())
    key = call.string("key", required=True)
    value = call.double("value", required=True)
    step = call.integer("step", default=0)
    timestamp = call.integer("timestamp", minimum=0)
    if timestamp is None:  # required by MLflow; a missing one means now
        timestamp = int(time.time() * 1000)
    model_id = call.string("model_id")
    model_metrics = []
    if model_id:
        dataset_name, dataset_digest = call.string("dataset_name"), call.string("dataset_digest")
        model_metrics.append(
            ModelMetricInput(model_id, key, value, step, timestamp, dataset_name, dataset_digest)
        )
    services.log_batch_to(
        actor=call.caller,
        run_id=run_id,
        find_run=lambda: run_ref(run_id, call.user),
        metrics=[MetricInput(key, value, step, timestamp)],
        model_metrics=model_metrics,
    )
    return {}


def log_parameter(call: Call) -> dict[str, Any]:
    param = ParamInput(call.string("key", required=True), call.string("value"))
    services.log_params(actor=call.user, run=_run_ref(call), params=[param])
    return {}


def _metric_inputs(items: list[dict[str, Any]]) -> tuple[list[MetricTuple], list[ModelMetricInput]]:
    """log-batch's metrics as plain tuples, with no per-point checks beyond the shape: this runs
    for every point, and `log_batch` checks keys, types and limits itself, naming `metrics[i]`."""
    metrics: list[MetricTuple] = []
    append = metrics.append
    model_metrics: list[ModelMetricInput] = []
    try:
        for item in items:
            append((item["key"], item["value"], item.get("step", 0), item.get("timestamp")))
            if item.get("model_id"):  # MLflow 3: the metric also measures a logged model
                model_metrics.append(
                    ModelMetricInput(
                        item["model_id"],
                        item["key"],
                        item["value"],
                        item.get("step", 0),
                        item.get("timestamp"),
                        item.get("dataset_name", ""),
                        item.get("dataset_digest", ""),
                    )
                )
    except KeyError as error:
        raise missing(f"metrics[{len(metrics)}].{error.args[0]}") from None
    return metrics, model_metrics


def log_batch(call: Call) -> dict[str, Any]:
    run_id = valid_run_id(call.run_id())
    metrics, model_metrics = _metric_inputs(call.objects("metrics"))
    services.log_batch_to(
        actor=call.caller,
        run_id=run_id,
        find_run=lambda: run_ref(run_id, call.user),
        metrics=metrics,
        params=wire.key_value_inputs(call, "params", ParamInput),
        tags=wire.tag_inputs(call),
        model_metrics=model_metrics,
    )
    return {}


def set_tag(call: Call) -> dict[str, Any]:
    tag = TagInput(call.string("key", required=True), call.string("value"))
    services.set_tags(actor=call.user, run=_run_ref(call), tags=[tag])
    return {}


def delete_tag(call: Call) -> dict[str, Any]:
    run, key = _run_ref(call), call.string("key", required=True)
    with in_mlflow_words(NotFound, "key", f"No tag with name: {key} in run with id {run.uuid}"):
        services.delete_tag(actor=call.user, run=run, key=key)
    return {}


def _dataset_spec(item: dict[str, Any], index: int) -> DatasetSpec:
    """A DatasetInput message: the dataset, its input tags in order, and its context (the tag
    mlflow.data.context)."""
    where = f"datasets[{index}]"
    dataset = item.get("dataset")
    if dataset is None:
        raise missing(f"{where}.dataset")
    tags = item.get("tags") or []
    if not isinstance(dataset, dict):
        raise invalid(f"{where}.dataset", dataset)
    if not isinstance(tags, list) or not all(isinstance(tag, dict) for tag in tags):
        raise invalid(f"{where}.tags", tags)
    pairs = []
    for tag_index, tag in enumerate(tags):
        key, value = tag.get("key"), tag.get("value", "")
        if not isinstance(key, str) or not key:
            raise invalid(f"{where}.tags[{tag_index}].key", key)
        if not isinstance(value, str):
            raise invalid(f"{where}.tags[{tag_index}].value", value)
        pairs.append((key, value))
    context = next((value for key, value in pairs if key == wire.DATASET_CONTEXT_TAG), "")
    fields = ("name", "digest", "source_type", "source", "schema", "profile")
    return DatasetSpec(
        context=context, tags=tuple(pairs), **{field: dataset.get(field, "") for field in fields}
    )


def _model_links(call: Call, *, with_step: bool) -> list[tuple[str, int]]:
    links = []
    for index, item in enumerate(call.objects("models")):
        model_id = item.get("model_id")
        if not model_id:
            raise missing(f"models[{index}].model_id")
        if not isinstance(model_id, str):
            raise invalid(f"models[{index}].model_id", model_id)
        links.append((model_id, item.get("step", 0) if with_step else 0))
    return links


def log_inputs(call: Call) -> dict[str, Any]:
    run = _run_ref(call)
    datasets = [_dataset_spec(item, index) for index, item in enumerate(call.objects("datasets"))]
    models = [model_id for model_id, _ in _model_links(call, with_step=False)]
    services.log_inputs(actor=call.user, run=run, datasets=datasets, models=models)
    return {}


def log_outputs(call: Call) -> dict[str, Any]:
    run = _run_ref(call)
    models = _model_links(call, with_step=True)
    services.link_run_models(actor=call.user, run=run, links=models, direction=RunModelLink.Direction.OUTPUT)
    return {}


ENDPOINTS: list[Endpoint] = [
    Endpoint("POST", "runs/create", create_run),
    Endpoint("GET", "runs/get", get_run),
    Endpoint("POST", "runs/update", update_run),
    Endpoint("POST", "runs/delete", delete_run),
    Endpoint("POST", "runs/restore", restore_run),
    Endpoint("POST", "runs/search", search_runs),
    Endpoint("POST", "runs/log-metric", log_metric, checks_token=True),
    Endpoint("POST", "runs/log-parameter", log_parameter),
    Endpoint("POST", "runs/log-batch", log_batch, checks_token=True),
    Endpoint("POST", "runs/set-tag", set_tag),
    Endpoint("POST", "runs/delete-tag", delete_tag),
    Endpoint("POST", "runs/log-inputs", log_inputs),
    Endpoint("POST", "runs/outputs", log_outputs),
]
