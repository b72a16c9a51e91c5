"""Every read of tracking data; dashboard views and API views both come through here."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from django.db.models import Count, Max, Q, QuerySet, prefetch_related_objects
from tsdownsample import MinMaxLTTBDownsampler

from config.exceptions import InvalidInput, NotFound
from tracker import logged_model_search, search
from tracker.models import (
    Artifact,
    DatasetInput,
    Experiment,
    Lifecycle,
    LoggedModel,
    LoggedModelMetric,
    LoggedModelParam,
    LoggedModelTag,
    MetricKey,
    MetricPoint,
    MetricSummary,
    Param,
    Run,
    RunModelLink,
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


@dataclass(frozen=True)
class ExperimentPage:
    experiments: list[Experiment]  # tags prefetched
    next_page_token: str | None


def search_experiments(
    *,
    filter_string: str | None = None,
    order_by: Sequence[str] | None = None,
    max_results: int = 1000,
    page_token: str | None = None,
    lifecycle: str | None = Lifecycle.ACTIVE,
) -> ExperimentPage:
    """One page of experiments matching MLflow's experiment filter, with keyset paging."""
    if not 1 <= max_results <= MAX_RESULTS_LIMIT:
        raise InvalidInput(f"must be between 1 and {MAX_RESULTS_LIMIT}", field="max_results")
    experiments = Experiment.objects.all()
    if lifecycle:
        experiments = experiments.filter(lifecycle=lifecycle)
    result = search.apply_experiment_search(experiments, filter_string=filter_string, order_by=order_by)
    page, next_token = search.page_after(result, cursor=page_token, limit=max_results)
    prefetch_related_objects(page, "tags")
    return ExperimentPage(experiments=page, next_page_token=next_token)


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


def _thinned_index(steps: np.ndarray, values: np.ndarray, max_points: int) -> np.ndarray:
    """Which points to keep: MinMaxLTTB's choice among the finite values, plus every NaN/inf."""
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
    return np.array(sorted(keep), dtype=np.int64)


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
        index = _thinned_index(steps, values, max_points)
        steps, values = steps[index], values[index]
    return Series(
        run_id=run.uuid,
        key=key,
        steps=steps.tolist(),
        values=[v if math.isfinite(v) else (None if math.isnan(v) else v) for v in values.tolist()],
        total_points=total,
        downsampled=downsampled,
    )


MAX_SAMPLED_RUNS = 100
MAX_SAMPLES_PER_RUN = 2500


def metric_samples(
    *,
    runs: Sequence[Run],
    key: str,
    max_points: int = MAX_SAMPLES_PER_RUN,
    step_range: tuple[int | None, int | None] = (None, None),
) -> list[tuple[str, int, int, float]]:
    """One metric of several runs, each thinned like the charts' series, for comparing runs.

    Rows are (run uuid, step, timestamp, value), by run uuid then step; a run's first and last
    point in the window are always kept. Each run is read on its own, so memory stays bounded
    by the longest series rather than the sum of them.
    """
    if len(runs) > MAX_SAMPLED_RUNS:
        raise InvalidInput(f"at most {MAX_SAMPLED_RUNS} runs at once, got {len(runs)}", field="run_ids")
    if not 1 <= max_points <= MAX_SAMPLES_PER_RUN:
        raise InvalidInput(f"must be between 1 and {MAX_SAMPLES_PER_RUN}", field="max_results")
    first_step, last_step = step_range
    if first_step is not None and last_step is not None and first_step > last_step:
        raise InvalidInput("must not be greater than end_step", field="start_step")
    key_id = MetricKey.objects.filter(name=key).values_list("id", flat=True).first()
    if key_id is None:
        return []
    samples: list[tuple[str, int, int, float]] = []
    for run in sorted(runs, key=lambda r: r.uuid):
        points = MetricPoint.objects.filter(run=run, key_id=key_id)
        if first_step is not None:
            points = points.filter(step__gte=first_step)
        if last_step is not None:
            points = points.filter(step__lte=last_step)
        rows = list(points.order_by("step", "timestamp").values_list("step", "timestamp", "value", "is_nan"))
        total = len(rows)
        if total > max_points:
            if max_points < 3:  # the downsampler needs three points; keep the ends, the last one first
                chosen = sorted({0, total - 1})[-max_points:]
            else:
                steps = np.fromiter((r[0] for r in rows), dtype=np.int64, count=total)
                values = np.fromiter(
                    (math.nan if r[3] else r[2] for r in rows), dtype=np.float64, count=total
                )
                chosen = _thinned_index(steps, values, max_points).tolist()
            rows = [rows[i] for i in chosen]
        uuid = run.uuid
        samples.extend((uuid, step, ts, math.nan if nan else value) for step, ts, value, nan in rows)
    return samples


# Logged models (MLflow 3), and the artifact folders of runs and logged models ---------------


def get_logged_model(*, model_id: str, allow_deleted: bool = False) -> LoggedModel:
    """A logged model by its `m-…` id; a deleted one only when asked for (MLflow's allow_deleted)."""
    model = None
    if "\x00" not in model_id:  # PostgreSQL refuses NUL in a query parameter; no id contains one
        models = LoggedModel.objects.filter(model_id=model_id)
        if not allow_deleted:
            models = models.filter(lifecycle=Lifecycle.ACTIVE)
        model = models.first()
    if model is None:
        raise NotFound(f"Logged model with ID {model_id!r} not found.", field="model_id")
    return model


def get_source_run(*, run_id: str) -> Run:
    """The run a logged model names as its source; an unknown id is an error naming that field."""
    run = Run.objects.filter(uuid=run_id).first() if "\x00" not in run_id else None
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


def _page_offset(page_token: str | None) -> int:
    """Logged-model pages are numbered by offset, as MLflow numbers them."""
    if not page_token:
        return 0
    values = search.decode_cursor(page_token)
    if len(values) != 1 or not isinstance(values[0], int) or isinstance(values[0], bool) or values[0] < 0:
        raise InvalidInput("Invalid page token", field="page_token")
    return values[0]


def search_logged_models(
    *,
    experiment_ids: Sequence[int | str],
    filter_string: str | None = None,
    datasets: Sequence[logged_model_search.DatasetFilter] = (),
    orders: Sequence[logged_model_search.ModelOrder] = (),
    max_results: int = 100,
    page_token: str | None = None,
) -> LoggedModelPage:
    """One page of the active logged models of some experiments matching MLflow's model filter."""
    if not experiment_ids:
        raise InvalidInput("must name at least one experiment", field="experiment_ids")
    if not 1 <= max_results <= MAX_RESULTS_LIMIT:
        raise InvalidInput(f"must be between 1 and {MAX_RESULTS_LIMIT}", field="max_results")
    offset = _page_offset(page_token)
    experiments = get_experiments(experiment_ids=experiment_ids)
    models = LoggedModel.objects.filter(
        experiment_id__in=[e.pk for e in experiments], lifecycle=Lifecycle.ACTIVE
    )
    models = logged_model_search.apply_search(
        models, filter_string=filter_string, datasets=datasets, orders=orders
    )
    page = list(models[offset : offset + max_results + 1])
    next_token = search.encode_cursor([offset + max_results]) if len(page) > max_results else None
    return LoggedModelPage(models=logged_model_details(page[:max_results]), next_page_token=next_token)


ArtifactOwner = Run | LoggedModel


def get_artifact_owner(*, experiment_id: str, run_id: str = "", model_id: str = "") -> ArtifactOwner:
    """The run or logged model an artifact path names, which must belong to the experiment the
    path starts with (`<experiment>/<run>/artifacts/…`, `<experiment>/models/<model>/artifacts/…`)."""
    owner: ArtifactOwner
    if model_id:
        owner = get_logged_model(model_id=model_id, allow_deleted=True)
        label = f"logged model {model_id}"
    else:
        runs = Run.objects.only("id", "uuid", "lifecycle", "experiment_id")
        run = runs.filter(uuid=run_id).first() if "\x00" not in run_id else None
        if run is None:
            raise NotFound(f"run {run_id!r} does not exist", field="path")
        owner, label = run, f"run {run_id}"
    if str(owner.experiment_id) != experiment_id:
        raise NotFound(f"{label} is not in experiment {experiment_id!r}", field="path")
    return owner


def _owned_artifacts(owner: ArtifactOwner) -> QuerySet[Artifact]:
    if isinstance(owner, Run):
        return Artifact.objects.filter(run=owner)
    return Artifact.objects.filter(logged_model=owner)


@dataclass(frozen=True)
class ArtifactEntry:
    path: str  # relative to the owner's artifact root
    is_dir: bool
    size: int | None  # None for a folder


def artifact_directory(*, owner: ArtifactOwner, path: str = "") -> list[ArtifactEntry]:
    """What lies directly inside a folder of the owner's artifacts: its files and sub-folders.

    MLflow lists one level at a time, and lists nothing for a file or a path that is not there.
    """
    prefix = f"{path.strip('/')}/" if path.strip("/") else ""
    artifacts = _owned_artifacts(owner)
    if prefix:
        artifacts = artifacts.filter(path__startswith=prefix)
    entries: dict[str, ArtifactEntry] = {}
    for artifact_path, size in artifacts.values_list("path", "size"):
        if not artifact_path.startswith(prefix):  # SQLite's LIKE ignores case
            continue
        head, below, _ = artifact_path[len(prefix) :].partition("/")
        name = prefix + head
        if below:
            entries[name] = ArtifactEntry(name, True, None)
        else:
            entries.setdefault(name, ArtifactEntry(name, False, size))
    return sorted(entries.values(), key=lambda entry: entry.path)


def get_owned_artifact(*, owner: ArtifactOwner, path: str) -> Artifact:
    """One file of a run or a logged model, for download; a folder or a missing path is a 404."""
    artifact = _owned_artifacts(owner).filter(path=path).first()
    if artifact is None:
        label = f"run {owner.uuid}" if isinstance(owner, Run) else f"logged model {owner.model_id}"
        raise NotFound(f"{label} has no artifact at {path!r}", field="path")
    return artifact
