"""Reads of MLflow 3's logged models: by id, with their params, tags and metrics, and the
logged-model search."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from django.db.models import Prefetch

from config.exceptions import InvalidInput, NotFound
from tracker import search
from tracker.models import (
    Artifact,
    Lifecycle,
    LoggedModel,
    LoggedModelMetric,
    LoggedModelParam,
    LoggedModelTag,
    Run,
)
from tracker.permissions import readable_experiment_ids, require_run_readable
from tracker.search import logged_models as logged_model_search

from .experiments import MAX_RESULTS_LIMIT, get_experiments


def get_logged_model(*, model_id: str, user: Any, allow_deleted: bool = False) -> LoggedModel:
    """A logged model by its `m-…` id; a deleted one only when asked for (MLflow's allow_deleted)."""
    models = LoggedModel.objects.filter(model_id=model_id)
    if not allow_deleted:
        models = models.filter(lifecycle=Lifecycle.ACTIVE)
    model = models.first()
    if model is None:
        raise NotFound(f"Logged model with ID {model_id!r} not found.", field="model_id")
    require_run_readable(user, model, action="Reading a logged model")
    return model


def logged_models_of_run(*, run: Run) -> list[LoggedModel]:
    """The models a run logged (`mlflow.<flavor>.log_model`), oldest first, each with its files
    in `artifacts`: MLflow 3 stores a model's files under the model, not the run, so a run page
    that listed only the run's own files would show none of them."""
    files = Prefetch("artifacts", queryset=Artifact.objects.order_by("path"))
    models = LoggedModel.objects.filter(source_run=run, lifecycle=Lifecycle.ACTIVE).prefetch_related(files)
    return list(models.order_by("created_at", "pk"))


def get_logged_model_artifact(*, run: Run, model_id: str, path: str) -> Artifact:
    """A file of a model that `run` logged (the run's own READ covers it)."""
    artifact = Artifact.objects.filter(
        logged_model__model_id=model_id, logged_model__source_run=run, path=path
    ).first()
    if artifact is None:
        raise NotFound(f"run {run.uuid} logged no model {model_id!r} with a file at {path!r}", field="path")
    return artifact


def get_source_run(*, run_id: str) -> Run:
    """The run a logged model names as its source; an unknown id is an error naming that field."""
    run = Run.objects.filter(uuid=run_id).first()
    if run is None:
        raise NotFound(f"run {run_id!r} does not exist", field="source_run_id")
    return run


class ModelMetricValue(NamedTuple):
    key: str
    value: float  # NaN when the point was NaN
    step: int
    timestamp: int
    dataset_name: str
    dataset_digest: str
    run_id: str | None


@dataclass
class LoggedModelDetails:
    """A logged model with everything MLflow's model message shows, loaded in a fixed number of queries."""

    model: LoggedModel
    source_run_id: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: list[ModelMetricValue] = field(default_factory=list)


def logged_model_details(models: Sequence[LoggedModel]) -> list[LoggedModelDetails]:
    """Params, tags, metrics and source run ids for many models in four queries (no N+1)."""
    by_pk = {model.pk: LoggedModelDetails(model=model) for model in models}
    if not by_pk:
        return []
    run_ids = {model.source_run_id for model in models if model.source_run_id is not None}
    run_uuids = dict(Run.objects.filter(pk__in=run_ids).values_list("pk", "uuid")) if run_ids else {}
    for details in by_pk.values():
        if details.model.source_run_id is not None:
            details.source_run_id = run_uuids[details.model.source_run_id]
    for table, attribute in ((LoggedModelParam, "params"), (LoggedModelTag, "tags")):
        pairs = table.objects.filter(model_id__in=by_pk).order_by("key")
        for model_pk, key, text in pairs.values_list("model_id", "key", "value"):
            getattr(by_pk[model_pk], attribute)[key] = text
    points = LoggedModelMetric.objects.filter(model_id__in=by_pk).values_list(
        *("model_id", "key", "value", "is_nan", "step", "timestamp"),
        *("dataset_name", "dataset_digest", "run__uuid"),
    )
    for model_pk, key, number, is_nan, step, timestamp, dataset_name, dataset_digest, run_uuid in points:
        value = math.nan if is_nan else number
        by_pk[model_pk].metrics.append(
            ModelMetricValue(key, value, step, timestamp, dataset_name, dataset_digest, run_uuid)
        )
    return [by_pk[model.pk] for model in models]


@dataclass(frozen=True)
class LoggedModelPage:
    models: list[LoggedModelDetails]
    next_page_token: str | None


def search_logged_models(
    *,
    experiment_ids: Sequence[int | str],
    filter_string: str | None = None,
    datasets: Sequence[logged_model_search.DatasetFilter] = (),
    orders: Sequence[logged_model_search.ModelOrder] = (),
    max_results: int = 100,
    page_token: str | None = None,
    user: Any,
) -> LoggedModelPage:
    """One page of the active logged models of some experiments matching MLflow's model filter."""
    if not experiment_ids:
        raise InvalidInput("must name at least one experiment", field="experiment_ids")
    if not 1 <= max_results <= MAX_RESULTS_LIMIT:
        raise InvalidInput(f"must be between 1 and {MAX_RESULTS_LIMIT}", field="max_results")
    offset = search.decode_offset(page_token or "")  # numbered by offset, as MLflow does
    experiments = get_experiments(experiment_ids=experiment_ids)
    models = LoggedModel.objects.filter(
        experiment_id__in=readable_experiment_ids(user, [e.pk for e in experiments]),
        lifecycle=Lifecycle.ACTIVE,
    )
    models = logged_model_search.apply_search(
        models, filter_string=filter_string, datasets=datasets, orders=orders
    )
    page = list(models[offset : offset + max_results + 1])
    next_token = search.encode_cursor([offset + max_results]) if len(page) > max_results else None
    return LoggedModelPage(models=logged_model_details(page[:max_results]), next_page_token=next_token)
