"""Reads of runs: by id, one page of the run search, and the params, tags, latest metrics and
datasets a run's row or page shows."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.db.models import QuerySet

from accounts.permissions import remember_grant
from config.db import fetch_together, for_each_id, prepared_cursor
from config.exceptions import InvalidInput, NotFound
from tracker import search
from tracker.models import (
    DatasetInput,
    Experiment,
    ExperimentKey,
    ExperimentPermission,
    Lifecycle,
    LoggedModel,
    MetricKey,
    MetricSummary,
    Param,
    Run,
    RunModelLink,
    Tag,
)
from tracker.permissions import (
    readable_experiment_ids,
    readable_experiments_q,
    require_run_readable,
    require_runs_readable,
)

from .experiments import MAX_RESULTS_LIMIT, get_experiments


def get_run(*, run_id: str, user: Any, field: str = "run_id") -> Run:
    """A run `user` may read (SYSTEM_READER for commands); an unreadable one is refused. An
    unknown id is a 404 naming `field`, the input that gave it."""
    run = Run.objects.select_related("experiment", "user", "parent").filter(uuid=run_id).first()
    if run is None:
        raise NotFound(f"run {run_id!r} does not exist", field=field)
    require_run_readable(user, run, action="Reading a run")
    return run


def find_runs(*, run_ids: Sequence[str]) -> dict[str, Run]:
    """The runs (identity only) of those ids that exist, by id, in one query."""
    runs = Run.objects.filter(uuid__in=run_ids).only("id", "uuid", "experiment_id")
    return {run.uuid: run for run in runs}


def get_runs(*, run_ids: Sequence[str], user: Any) -> list[Run]:
    """Several runs (identity only) in one query; an unknown id is an error naming it, and
    one the user may not read is refused."""
    found = find_runs(run_ids=run_ids)
    for run_id in run_ids:
        if run_id not in found:
            raise NotFound(f"run {run_id!r} does not exist", field="run_ids")
    runs = [found[run_id] for run_id in dict.fromkeys(run_ids)]
    require_runs_readable(user, runs, action="Reading a run")
    return runs


# In the model's field order, as Model.from_db expects a subset of fields.
_RUN_REF_FIELDS = tuple(
    field.attname
    for field in Run._meta.concrete_fields
    if field.attname in {"id", "uuid", "lifecycle", "experiment_id", "artifact_uri"}
)
_RUN_REF_SQL = (
    f"SELECT {', '.join(f'r.{name}' for name in _RUN_REF_FIELDS)}, "
    f"(SELECT level FROM {ExperimentPermission._meta.db_table} "
    "WHERE experiment_id = r.experiment_id AND user_id = %s) "
    f"FROM {Run._meta.db_table} r WHERE r.uuid = %s"
)


def get_run_ref(*, run_id: str, user: Any = None) -> Run:
    """A run without its related rows, for write paths that only need its identity and where its
    files go (log-batch, log_metric, a new model version). With `user`, the same query reads
    their grant on the run's experiment, so the write's permission check asks nothing more."""
    # A plain cursor: every logging call starts here, and the ORM's compile cost (or a raw
    # queryset's column mapping) would double it.
    user_id = user.pk if getattr(user, "is_authenticated", False) else None
    with prepared_cursor() as cursor:  # planned once per connection
        cursor.execute(_RUN_REF_SQL, [user_id, run_id])
        row = cursor.fetchone()
    if row is None:
        raise NotFound(f"run {run_id!r} does not exist", field="run_id")
    run = Run.from_db(connection.alias, _RUN_REF_FIELDS, row[:-1])
    if user_id is not None:
        remember_grant(user, Experiment, run.experiment_id, row[-1])
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
_PARAMS_SQL = f"SELECT run_id, key, value FROM {Param._meta.db_table} WHERE {{ids}}"
_TAGS_SQL = f"SELECT run_id, key, value FROM {Tag._meta.db_table} WHERE {{ids}}"
_SUMMARIES_SQL = (
    f"SELECT s.run_id, k.name, {', '.join(f's.{column}' for column in _SUMMARY_COLUMNS)} "
    f"FROM {MetricSummary._meta.db_table} s JOIN {MetricKey._meta.db_table} k ON k.id = s.key_id "
    "WHERE {ids}"
)
_MODEL_LINKS_SQL = (
    f"SELECT l.run_id, l.direction, m.model_id, l.step FROM {RunModelLink._meta.db_table} l "
    f"JOIN {LoggedModel._meta.db_table} m ON m.id = l.model_id WHERE {{ids}} "
    "ORDER BY l.run_id, l.direction, l.step, l.id"
)
_READS = (("run_id", _PARAMS_SQL), ("run_id", _TAGS_SQL), ("s.run_id", _SUMMARIES_SQL))
# Datasets are model instances, rebuilt from their rows as the ORM would (JSON arrives as text).
_DATASET_FIELDS = DatasetInput._meta.concrete_fields
_DATASETS_SQL = (
    f"SELECT {', '.join(f.column for f in _DATASET_FIELDS)} FROM {DatasetInput._meta.db_table} "
    "WHERE {ids} ORDER BY name, context"
)


def _dataset_inputs(rows: list[tuple[Any, ...]]) -> Iterator[DatasetInput]:
    names = [field.attname for field in _DATASET_FIELDS]
    converters = [
        (index, convert)
        for index, field in enumerate(_DATASET_FIELDS)
        # The JSON tags arrive as text. (Django has get_db_converters; its type stubs lack it.)
        for convert in field.get_db_converters(connection)  # type: ignore[attr-defined]
    ]
    for row in rows:
        values = list(row)
        for index, convert in converters:
            values[index] = convert(values[index], None, connection)
        yield DatasetInput.from_db(connection.alias, names, values)


def run_data(runs: Sequence[Run], *, with_model_links: bool = False) -> list[RunData]:
    """Params, tags, latest metrics and datasets for many runs in a fixed number of queries (no
    N+1), and the logged models each run used or produced, for MLflow's run message.

    Every run table, comparison and search answer comes here: the params, tags, metrics and
    model links are plain reads of rows (not model instances: a page may hold thousands) that go
    to PostgreSQL together, one round trip, with the datasets (model instances, which SQLite reads
    through the ORM: its datetimes need the ORM's converters). The datasets' own query, compiled
    by the ORM, was 1.4 ms of the 8 this took for a 56-run search page.
    """
    by_pk = {run.pk: RunData(run=run) for run in runs}
    if not by_pk:
        return []
    on_postgresql = connection.vendor == "postgresql"
    reads = [*_READS]
    if with_model_links:
        reads.append(("l.run_id", _MODEL_LINKS_SQL))
    if on_postgresql:
        reads.append(("run_id", _DATASETS_SQL))
    ids = list(by_pk)
    fetched = iter(fetch_together([for_each_id(sql, column=column, ids=ids) for column, sql in reads]))
    params, tags, summaries = next(fetched), next(fetched), next(fetched)
    links = next(fetched) if with_model_links else []
    datasets = next(fetched) if on_postgresql else []
    for run_id, key, value in params:
        by_pk[run_id].params[key] = value
    for run_id, key, value in tags:
        by_pk[run_id].tags[key] = value
    for run_id, key, value, is_nan, *values in summaries:
        by_pk[run_id].metrics[key] = MetricValue(key, value, bool(is_nan), *values)  # SQLite: 0/1
    for run_id, direction, model_id, step in links:
        if direction == RunModelLink.Direction.INPUT:
            by_pk[run_id].model_inputs.append(model_id)
        else:
            by_pk[run_id].model_outputs.append((model_id, step))
    found = _dataset_inputs(datasets) if on_postgresql else DatasetInput.objects.filter(run_id__in=by_pk)
    for dataset in found:
        by_pk[dataset.run_id].datasets.append(dataset)
    for data in by_pk.values():
        data.params = dict(sorted(data.params.items()))
        data.metrics = dict(sorted(data.metrics.items()))
    return [by_pk[run.pk] for run in runs]


@dataclass(frozen=True)
class KeySets:
    """The param, metric, tag and dataset names the runs of some experiments have logged."""

    params: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    datasets: list[str] = field(default_factory=list)

    def has(self, entity: str, key: str) -> bool:
        names = {"param": self.params, "metric": self.metrics, "tag": self.tags}.get(entity)
        return names is None or key in names  # attributes and dataset fields always exist


def experiment_key_sets(*, experiment_ids: Sequence[int]) -> KeySets:
    """Key sets in one query over the rows the write services keep (never a scan of the runs)."""
    found: dict[str, set[str]] = {kind: set() for kind in ExperimentKey.Kind.values}
    rows = ExperimentKey.objects.filter(experiment_id__in=experiment_ids).values_list("kind", "key")
    for kind, key in rows:
        found[kind].add(key)
    return KeySets(*(sorted(found[kind]) for kind in ("param", "metric", "tag", "dataset")))


def unknown_filter_keys(*, filter_string: str | None, key_sets: KeySets) -> list[str]:
    """The metrics, params and tags a filter names that no run of the experiments has logged.

    Such a filter is valid (`IS NULL` on it matches every run) but usually a typo, so the run
    table warns about it instead of showing an empty table without a word.
    """
    names = [
        search.display_name(cmp.entity, cmp.key)
        for cmp in search.comparisons_of(search.parse_filter(filter_string))
        if not key_sets.has(cmp.entity, cmp.key)
    ]
    return list(dict.fromkeys(names))


@dataclass(frozen=True)
class RunPage:
    """A page of runs; the key lists cover every run searched, so columns stay put across pages."""

    runs: list[RunData]
    next_page_token: str | None
    param_keys: list[str]
    metric_keys: list[str]
    key_sets: KeySets = field(default_factory=KeySets)
    total: int | None = None  # matching runs, when the first page holds them all


# An exact count of more matching runs than this would cost more than the page itself, so the
# count stops here and the table says "more than 10,000" (see docs/architecture.md).
COUNT_LIMIT = 10_000


def _id_of(experiment: int | str | Experiment) -> int | str:
    return experiment.pk if isinstance(experiment, Experiment) else experiment


def _searched_runs(
    experiment_ids: Sequence[int | str | Experiment], lifecycle: str | None, user: Any
) -> QuerySet[Run]:
    """Runs of those of these experiments that `user` may read; experiments passed as rows (a
    page has them) are not looked up again."""
    if all(isinstance(e, Experiment) for e in experiment_ids):
        found = [e.pk for e in experiment_ids if isinstance(e, Experiment)]
    else:
        found = [e.pk for e in get_experiments(experiment_ids=[_id_of(e) for e in experiment_ids], user=user)]
    found = readable_experiment_ids(user, found)
    runs = Run.objects.filter(experiment_id__in=found)
    return runs.filter(lifecycle=lifecycle) if lifecycle else runs


def count_runs(*, runs: QuerySet[Run], limit: int = COUNT_LIMIT) -> int:
    """Matching runs, counted up to `limit + 1` (an index-only scan stops there)."""
    return runs.order_by()[: limit + 1].count()


def count_matching_runs(
    *,
    experiment_ids: Sequence[int | str | Experiment],
    filter_string: str | None = None,
    lifecycle: str | None = Lifecycle.ACTIVE,
    user: Any,
) -> int:
    """The runs a search matches, up to COUNT_LIMIT + 1: the run table asks for it apart from
    its page, because a selective filter's count costs more than the page itself."""
    runs = _searched_runs(experiment_ids, lifecycle, user)
    return count_runs(runs=runs.filter(search.compile_filter(filter_string)))


def search_runs(
    *,
    experiment_ids: Sequence[int | str | Experiment],
    filter_string: str | None = None,
    order_by: Sequence[str] | None = None,
    max_results: int = 100,
    page_token: str | None = None,
    lifecycle: str | None = Lifecycle.ACTIVE,
    with_column_keys: bool = True,
    with_model_links: bool = False,
    run_fields: Sequence[str] | None = None,
    split_metric_sort: bool = False,
    user: Any,
) -> RunPage:
    """One page of runs matching the run-search language, with keyset paging.

    Column keys come from the experiments' key sets (one small query); API callers that only
    want the page (the MLflow API) turn them off. Callers that show only some of a run's own
    fields (the MLflow API's run message: nine) name them in `run_fields`: the page then loads
    those and the user's name, without the parent run and experiment rows the run table shows
    (two joins fewer, which halves the planning of a filtered search). The total is known when
    the first page holds every match; otherwise `count_matching_runs` counts it, in a request of its own.
    `split_metric_sort` (PostgreSQL only) reads a metric-first sort through the summary index:
    the run table's pages of 100,000 runs need it; a short page costs one query more.
    """
    if not 1 <= max_results <= MAX_RESULTS_LIMIT:
        raise InvalidInput(f"must be between 1 and {MAX_RESULTS_LIMIT}", field="max_results")
    runs = _searched_runs(experiment_ids, lifecycle, user)
    if run_fields is None:
        runs = runs.select_related("user", "parent", "experiment")
    else:
        runs = runs.select_related("user").only(*run_fields, "user__username")
    result = search.apply_search(
        runs,
        filter_string=filter_string,
        order_by=order_by,
        split_metric_sort=split_metric_sort and connection.vendor == "postgresql",
    )
    page, next_token = search.page_after(result, cursor=page_token, limit=max_results)
    key_sets = KeySets()
    if with_column_keys:
        # Of the experiments searched, those the user may read (the runs' own rule): the keys of
        # an experiment closed to them are not theirs to see either.
        ids = readable_experiment_ids(user, [int(_id_of(e)) for e in experiment_ids])
        key_sets = experiment_key_sets(experiment_ids=list(dict.fromkeys(ids)))
    total = None
    if page_token is None and next_token is None:
        total = len(page)  # the first page holds every match: no count needed
    return RunPage(
        runs=run_data(page, with_model_links=with_model_links),
        next_page_token=next_token,
        param_keys=key_sets.params,
        metric_keys=key_sets.metrics,
        key_sets=key_sets,
        total=total,
    )


def iter_runs(
    *,
    experiment_ids: Sequence[int | str | Experiment],
    filter_string: str | None = None,
    order_by: Sequence[str] | None = None,
    lifecycle: str | None = Lifecycle.ACTIVE,
    chunk_size: int = 1000,
    user: Any,
) -> Iterator[RunData]:
    """Every matching run in the search's order, read page by page (keyset), so memory stays flat
    however many runs match: the CSV export streams from here."""
    token: str | None = None
    while True:
        page = search_runs(
            experiment_ids=experiment_ids,
            filter_string=filter_string,
            order_by=order_by,
            max_results=chunk_size,
            page_token=token,
            lifecycle=lifecycle,
            with_column_keys=False,
            split_metric_sort=True,
            user=user,
        )
        yield from page.runs
        token = page.next_page_token
        if token is None:
            return


def run_detail(*, run: Run, with_model_links: bool = False) -> RunData:
    return run_data([run], with_model_links=with_model_links)[0]


CHILD_RUNS_SHOWN = 100


@dataclass(frozen=True)
class ChildRuns:
    """A parent run's children that the user may read: the newest `CHILD_RUNS_SHOWN`, and how many
    there are in all (a hyperparameter sweep can start thousands)."""

    runs: list[Run]
    total: int


def child_runs(*, run: Run, user: Any, limit: int = CHILD_RUNS_SHOWN) -> ChildRuns:
    """The runs started under `run` (MLflow's nested runs), newest first; deleted ones left out."""
    children = Run.objects.filter(parent=run, lifecycle=Lifecycle.ACTIVE).filter(
        readable_experiments_q(user, path="experiment_id")
    )
    shown = list(children.order_by("-start_time", "-pk")[: limit + 1])
    total = len(shown) if len(shown) <= limit else children.count()
    return ChildRuns(runs=shown[:limit], total=total)
