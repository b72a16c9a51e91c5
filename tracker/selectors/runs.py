"""Reads of runs: by id, one page of the run search, and the params, tags, latest metrics and
datasets a run's row or page shows."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.db.models import QuerySet

from config.exceptions import InvalidInput, NotFound
from tracker import search
from tracker.models import DatasetInput, Lifecycle, MetricKey, MetricSummary, Param, Run, RunModelLink, Tag

from .experiments import MAX_RESULTS_LIMIT, get_experiments


def get_run(*, run_id: str) -> Run:
    run = Run.objects.select_related("experiment", "user", "parent").filter(uuid=run_id).first()
    if run is None:
        raise NotFound(f"run {run_id!r} does not exist", field="run_id")
    return run


def get_runs(*, run_ids: Sequence[str]) -> list[Run]:
    """Several runs (identity only) in one query; an unknown id is an error naming it."""
    runs = Run.objects.filter(uuid__in=run_ids).only("id", "uuid", "experiment_id")
    found = {run.uuid: run for run in runs}
    for run_id in run_ids:
        if run_id not in found:
            raise NotFound(f"run {run_id!r} does not exist", field="run_ids")
    return [found[run_id] for run_id in dict.fromkeys(run_ids)]


_RUN_REF_SQL = f"SELECT id, uuid, lifecycle, experiment_id FROM {Run._meta.db_table} WHERE uuid = %s"


def get_run_ref(*, run_id: str) -> Run:
    """A run without its related rows, for write paths that only need its identity (log-batch)."""
    # Plain SQL: every logging call starts here, and the ORM's compile cost would double it.
    found = Run.objects.raw(_RUN_REF_SQL, [run_id])
    run = next(iter(found), None)
    if run is None:
        raise NotFound(f"run {run_id!r} does not exist", field="run_id")
    return run


@dataclass(frozen=True)
class MetricValue:
    key: str
    value: float | None  # None when the newest point is NaN
    is_nan: bool
    step: int
    timestamp: int
    min_value: float | None
    max_value: float | None
    count: int

    @property
    def display_value(self) -> float:
        return math.nan if self.is_nan or self.value is None else self.value


@dataclass
class RunData:
    """A run with the data its row or page shows, loaded in a fixed number of queries."""

    run: Run
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, MetricValue] = field(default_factory=dict)
    datasets: list[DatasetInput] = field(default_factory=list)
    model_inputs: list[str] = field(default_factory=list)  # logged model ids (with_model_links)
    model_outputs: list[tuple[str, int]] = field(default_factory=list)  # (model id, step)


# The columns of MetricSummary in MetricValue's field order, after the key name.
_SUMMARY_COLUMNS = (
    "last_value", "last_is_nan", "last_step", "last_timestamp", "min_value", "max_value", "count"
)  # fmt: skip


def run_data(runs: Sequence[Run], *, with_model_links: bool = False) -> list[RunData]:
    """Params, tags, latest metrics and datasets for many runs in four queries (no N+1);
    a fifth loads the logged models each run used or produced, for MLflow's run message."""
    by_pk = {run.pk: RunData(run=run) for run in runs}
    if not by_pk:
        return []
    for run_id, key, value in Param.objects.filter(run_id__in=by_pk).values_list("run_id", "key", "value"):
        by_pk[run_id].params[key] = value
    for run_id, key, value in Tag.objects.filter(run_id__in=by_pk).values_list("run_id", "key", "value"):
        by_pk[run_id].tags[key] = value
    summaries = MetricSummary.objects.filter(run_id__in=by_pk).values_list(
        "run_id", "key__name", *_SUMMARY_COLUMNS
    )
    for run_id, key, *values in summaries:  # rows, not model instances: a page may hold thousands
        by_pk[run_id].metrics[key] = MetricValue(key, *values)
    for dataset in DatasetInput.objects.filter(run_id__in=by_pk):
        by_pk[dataset.run_id].datasets.append(dataset)
    if with_model_links:
        links = RunModelLink.objects.filter(run_id__in=by_pk).order_by("run_id", "direction", "step", "pk")
        for run_id, direction, model_id, step in links.values_list(
            "run_id", "direction", "model__model_id", "step"
        ):
            if direction == RunModelLink.Direction.INPUT:
                by_pk[run_id].model_inputs.append(model_id)
            else:
                by_pk[run_id].model_outputs.append((model_id, step))
    for data in by_pk.values():
        data.params = dict(sorted(data.params.items()))
        data.metrics = dict(sorted(data.metrics.items()))
    return [by_pk[run.pk] for run in runs]


@dataclass(frozen=True)
class RunPage:
    """A page of runs; the key lists cover every run searched, so columns stay put across pages."""

    runs: list[RunData]
    next_page_token: str | None
    param_keys: list[str]
    metric_keys: list[str]


def column_keys(*, runs: QuerySet[Run]) -> tuple[list[str], list[str]]:
    """The distinct param and metric keys among `runs`, for table columns (two queries)."""
    param_keys = Param.objects.filter(run__in=runs).order_by("key").values_list("key", flat=True).distinct()
    metric_keys = (
        MetricKey.objects.filter(summaries__run__in=runs)
        .order_by("name")
        .values_list("name", flat=True)
        .distinct()
    )
    return list(param_keys), list(metric_keys)


def search_runs(
    *,
    experiment_ids: Sequence[int | str],
    filter_string: str | None = None,
    order_by: Sequence[str] | None = None,
    max_results: int = 100,
    page_token: str | None = None,
    lifecycle: str | None = Lifecycle.ACTIVE,
    with_column_keys: bool = True,
    with_model_links: bool = False,
) -> RunPage:
    """One page of runs matching the run-search language, with keyset paging.

    The table's column keys cost two queries over every run searched; API callers that
    only want the page (the MLflow API) turn them off.
    """
    if not 1 <= max_results <= MAX_RESULTS_LIMIT:
        raise InvalidInput(f"must be between 1 and {MAX_RESULTS_LIMIT}", field="max_results")
    runs = Run.objects.filter(
        experiment_id__in=[e.pk for e in get_experiments(experiment_ids=experiment_ids)]
    )
    if lifecycle:
        runs = runs.filter(lifecycle=lifecycle)
    result = search.apply_search(
        runs.select_related("user", "parent"), filter_string=filter_string, order_by=order_by
    )
    page, next_token = search.page_after(result, cursor=page_token, limit=max_results)
    param_keys, metric_keys = column_keys(runs=runs) if with_column_keys else ([], [])
    return RunPage(
        runs=run_data(page, with_model_links=with_model_links),
        next_page_token=next_token,
        param_keys=param_keys,
        metric_keys=metric_keys,
    )


def run_detail(*, run: Run, with_model_links: bool = False) -> RunData:
    return run_data([run], with_model_links=with_model_links)[0]
