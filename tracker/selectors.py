"""Every read of tracking data; dashboard views and API views both come through here."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from django.db.models import Count, Max, Q, QuerySet
from tsdownsample import MinMaxLTTBDownsampler

from config.exceptions import InvalidInput, NotFound
from tracker import search
from tracker.models import (
    Artifact,
    DatasetInput,
    Experiment,
    Lifecycle,
    MetricKey,
    MetricPoint,
    MetricSummary,
    Param,
    Run,
    Tag,
)

MAX_RESULTS_LIMIT = 50_000
DEFAULT_MAX_POINTS = 1200


def get_experiment(*, experiment_id: int | str) -> Experiment:
    try:
        pk = int(experiment_id)
    except (TypeError, ValueError):
        raise InvalidInput(f"{experiment_id!r} is not an experiment id", field="experiment_id") from None
    experiment = Experiment.objects.filter(pk=pk).first()
    if experiment is None:
        raise NotFound(f"experiment {experiment_id} does not exist", field="experiment_id")
    return experiment


def get_experiments(*, experiment_ids: Sequence[int | str]) -> list[Experiment]:
    """Several experiments in one query; an id that is malformed or unknown is an error naming it."""
    ids = []
    for experiment_id in experiment_ids:
        try:
            ids.append(int(experiment_id))
        except (TypeError, ValueError):
            raise InvalidInput(f"{experiment_id!r} is not an experiment id", field="experiment_id") from None
    found = {e.pk: e for e in Experiment.objects.filter(pk__in=ids)}
    for experiment_id in ids:
        if experiment_id not in found:
            raise NotFound(f"experiment {experiment_id} does not exist", field="experiment_id")
    return [found[i] for i in dict.fromkeys(ids)]


def get_experiment_by_name(*, name: str) -> Experiment:
    experiment = Experiment.objects.filter(name=name).first()
    if experiment is None:
        raise NotFound(f"no experiment is named {name!r}", field="experiment_name")
    return experiment


def list_experiments(*, lifecycle: str | None = Lifecycle.ACTIVE) -> QuerySet[Experiment]:
    """Experiments with their run count and last activity, for lists and pickers."""
    experiments = Experiment.objects.all()
    if lifecycle:
        experiments = experiments.filter(lifecycle=lifecycle)
    return experiments.annotate(
        run_count=Count("runs", distinct=True),
        last_activity=Max("runs__updated_at"),
    ).prefetch_related("tags")


def get_run(*, run_id: str) -> Run:
    run = Run.objects.select_related("experiment", "user", "parent").filter(uuid=run_id).first()
    if run is None:
        raise NotFound(f"run {run_id!r} does not exist", field="run_id")
    return run


def get_run_ref(*, run_id: str) -> Run:
    """A run without its related rows, for write paths that only need its identity (log-batch)."""
    run = Run.objects.only("id", "uuid", "lifecycle", "experiment_id").filter(uuid=run_id).first()
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


def _summary_value(summary: MetricSummary, key_name: str) -> MetricValue:
    return MetricValue(
        key=key_name,
        value=summary.last_value,
        is_nan=summary.last_is_nan,
        step=summary.last_step,
        timestamp=summary.last_timestamp,
        min_value=summary.min_value,
        max_value=summary.max_value,
        count=summary.count,
    )


def run_data(runs: Sequence[Run]) -> list[RunData]:
    """Params, tags, latest metrics and datasets for many runs in four queries (no N+1)."""
    by_pk = {run.pk: RunData(run=run) for run in runs}
    if not by_pk:
        return []
    for run_id, key, value in Param.objects.filter(run_id__in=by_pk).values_list("run_id", "key", "value"):
        by_pk[run_id].params[key] = value
    for run_id, key, value in Tag.objects.filter(run_id__in=by_pk).values_list("run_id", "key", "value"):
        by_pk[run_id].tags[key] = value
    for summary in MetricSummary.objects.filter(run_id__in=by_pk).select_related("key"):
        by_pk[summary.run_id].metrics[summary.key.name] = _summary_value(summary, summary.key.name)
    for dataset in DatasetInput.objects.filter(run_id__in=by_pk):
        by_pk[dataset.run_id].datasets.append(dataset)
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
) -> RunPage:
    """One page of runs matching the run-search language, with keyset paging."""
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
    param_keys, metric_keys = column_keys(runs=runs)
    return RunPage(
        runs=run_data(page), next_page_token=next_token, param_keys=param_keys, metric_keys=metric_keys
    )


def run_detail(*, run: Run) -> RunData:
    return run_data([run])[0]


def list_artifacts(*, run: Run, prefix: str = "") -> QuerySet[Artifact]:
    artifacts = Artifact.objects.filter(run=run)
    if prefix:
        artifacts = artifacts.filter(path__startswith=prefix.rstrip("/") + "/")
    return artifacts.order_by("path")


def get_artifact(*, run: Run, path: str) -> Artifact:
    artifact = Artifact.objects.filter(run=run, path=path).first()
    if artifact is None:
        raise NotFound(f"run {run.uuid} has no artifact at {path!r}", field="path")
    return artifact


def metric_keys_of(*, run: Run) -> list[str]:
    return list(
        MetricKey.objects.filter(summaries__run=run)
        .order_by("name")
        .values_list("name", flat=True)
        .distinct()
    )


def _history_after(page_token: str) -> Q:
    """Points after the cursor in (step, timestamp, value, is_nan) order, the primary key's order."""
    cursor = search.decode_cursor(page_token)
    shape: tuple[type | tuple[type, ...], ...] = (int, int, (int, float), bool)
    if len(cursor) != 4 or not all(
        isinstance(v, t) and (t is bool or not isinstance(v, bool))
        for v, t in zip(cursor, shape, strict=True)
    ):
        raise InvalidInput("Invalid page token", field="page_token")
    step, timestamp, value, is_nan = cursor
    return (
        Q(step__gt=step)
        | Q(step=step, timestamp__gt=timestamp)
        | Q(step=step, timestamp=timestamp, value__gt=value)
        | Q(step=step, timestamp=timestamp, value=value, is_nan__gt=is_nan)
    )


@dataclass(frozen=True)
class MetricHistory:
    key: str
    points: list[tuple[int, int, float]]  # (step, timestamp, value); value may be NaN or ±inf
    next_page_token: str | None


def metric_history(
    *, run: Run, key: str, max_results: int = 25_000, page_token: str | None = None
) -> MetricHistory:
    """Every point of one series in (step, timestamp) order, paged by keyset."""
    if not 1 <= max_results <= MAX_RESULTS_LIMIT:
        raise InvalidInput(f"must be between 1 and {MAX_RESULTS_LIMIT}", field="max_results")
    key_id = MetricKey.objects.filter(name=key).values_list("id", flat=True).first()
    if key_id is None:
        return MetricHistory(key=key, points=[], next_page_token=None)
    points = MetricPoint.objects.filter(run=run, key_id=key_id)
    if page_token:
        points = points.filter(_history_after(page_token))
    rows = list(
        points.order_by("step", "timestamp", "value", "is_nan").values_list(
            "step", "timestamp", "value", "is_nan"
        )[: max_results + 1]
    )
    next_token = None
    if len(rows) > max_results:
        rows = rows[:max_results]
        next_token = search.encode_cursor(list(rows[-1]))
    return MetricHistory(
        key=key,
        points=[(step, ts, math.nan if nan else value) for step, ts, value, nan in rows],
        next_page_token=next_token,
    )


@dataclass(frozen=True)
class Series:
    """One run's series as chart-ready arrays; `downsampled` says points were dropped."""

    run_id: str
    key: str
    steps: list[int]
    values: list[float | None]  # None for NaN, so charts show a gap
    total_points: int
    downsampled: bool


def metric_series(
    *,
    run: Run,
    key: str,
    max_points: int = DEFAULT_MAX_POINTS,
    x_range: tuple[float, float] | None = None,
) -> Series:
    """A series thinned on the server to about `max_points`, keeping its shape, first and last point.

    MinMaxLTTB (tsdownsample) keeps the peaks and troughs a learning curve's reader looks for.
    With `x_range` only that window is read, so zooming in fetches finer data.
    """
    max_points = max(10, min(int(max_points), 20_000))
    key_id = MetricKey.objects.filter(name=key).values_list("id", flat=True).first()
    if key_id is None:
        raise NotFound(f"run {run.uuid} has no metric {key!r}", field="key")
    points = MetricPoint.objects.filter(run=run, key_id=key_id)
    if x_range is not None:
        lo, hi = x_range
        points = points.filter(step__gte=math.floor(lo), step__lte=math.ceil(hi))
    rows = list(points.order_by("step", "timestamp").values_list("step", "value", "is_nan"))
    total = len(rows)
    if total == 0:
        return Series(run.uuid, key, [], [], 0, False)
    steps = np.fromiter((r[0] for r in rows), dtype=np.int64, count=total)
    values = np.fromiter((math.nan if r[2] else r[1] for r in rows), dtype=np.float64, count=total)
    downsampled = total > max_points
    if downsampled:
        finite = np.isfinite(values)
        # The downsampler needs finite values; NaN/inf points are rare and kept as they are.
        keep = set(np.flatnonzero(~finite).tolist())
        finite_index = np.flatnonzero(finite)
        if len(finite_index) > max_points:
            chosen = MinMaxLTTBDownsampler().downsample(
                steps[finite_index], values[finite_index], n_out=max_points
            )
            keep.update(finite_index[chosen].tolist())
        else:
            keep.update(finite_index.tolist())
        index = np.array(sorted(keep), dtype=np.int64)
        steps, values = steps[index], values[index]
    return Series(
        run_id=run.uuid,
        key=key,
        steps=steps.tolist(),
        values=[v if math.isfinite(v) else (None if math.isnan(v) else v) for v in values.tolist()],
        total_points=total,
        downsampled=downsampled,
    )
