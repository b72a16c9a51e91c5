"""Reads of experiments: by id or name, lists for pickers, and MLflow's experiment search."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, F, Max, Q, QuerySet, prefetch_related_objects
from django.db.models.functions import Lower

from accounts.permissions import get_with_grant, require_readable
from config.exceptions import InvalidInput, NotFound
from config.listing import Orders, containing_text, ordered
from tracker import search
from tracker.models import DatasetInput, Experiment, ExperimentTag, Lifecycle, SavedView
from tracker.permissions import readable_experiments_q

MAX_RESULTS_LIMIT = 50_000  # the most rows one page of any search or metric history holds
_LOOKED_UP_ONE_BY_ONE = 4  # experiments: up to this many, a prepared lookup each beats one ORM query


def _experiment_pk(experiment_id: int | str) -> int:
    """An experiment id as the database key. Text is refused; a number past 64 bits cannot name
    an experiment, so it is not found without asking the database (which would reject it)."""
    try:
        pk = int(experiment_id)
    except (TypeError, ValueError):
        raise InvalidInput(f"{experiment_id!r} is not an experiment id", field="experiment_id") from None
    if not 0 <= pk < 2**63:
        raise NotFound(f"experiment {experiment_id} does not exist", field="experiment_id")
    return pk


def get_experiment(*, experiment_id: int | str, user: Any) -> Experiment:
    """An experiment `user` may read (SYSTEM_READER for commands); an unreadable one is refused."""
    experiment = Experiment.objects.filter(pk=_experiment_pk(experiment_id)).first()
    if experiment is None:
        raise NotFound(f"experiment {experiment_id} does not exist", field="experiment_id")
    require_readable(user, experiment, action="Reading an experiment")
    return experiment


def get_experiments(*, experiment_ids: Sequence[int | str], user: Any = None) -> list[Experiment]:
    """Several experiments; an id that is malformed or unknown is an error naming it.

    With `user` and a few ids (what a search names), each is one prepared lookup that reads the
    user's grant too, so `readable_experiment_ids` then asks nothing: 0.3 ms for a one-experiment
    search, where the ORM's query and the grants' took 1.6. Otherwise one query for all.
    """
    ids = [_experiment_pk(experiment_id) for experiment_id in experiment_ids]
    unique = list(dict.fromkeys(ids))
    if user is not None and len(unique) <= _LOOKED_UP_ONE_BY_ONE:
        rows = (get_with_grant(Experiment, user, where="o.id = %s", params=[pk]) for pk in unique)
        found = {e.pk: e for e in rows if e is not None}
    else:
        found = {e.pk: e for e in Experiment.objects.filter(pk__in=ids)}
    for experiment_id in ids:
        if experiment_id not in found:
            raise NotFound(f"experiment {experiment_id} does not exist", field="experiment_id")
    return [found[i] for i in dict.fromkeys(ids)]


def get_experiment_by_name(*, name: str, user: Any) -> Experiment:
    experiment = Experiment.objects.filter(name=name).first()
    if experiment is None:
        raise NotFound(f"no experiment is named {name!r}", field="experiment_name")
    require_readable(user, experiment, action="Reading an experiment")
    return experiment


# MLflow's cap on one search-datasets answer (its store returns at most this many summaries).
MAX_DATASET_SUMMARIES = 1000


def dataset_summaries(*, experiments: Sequence[Experiment]) -> list[tuple[int, str, str, str]]:
    """The distinct (experiment, dataset name, digest, context) the active runs of these
    experiments used: what MLflow's UI offers as dataset filters."""
    rows = (
        DatasetInput.objects.filter(run__experiment__in=experiments, run__lifecycle=Lifecycle.ACTIVE)
        .values_list("run__experiment_id", "name", "digest", "context")
        .order_by("run__experiment_id", "name", "digest", "context")
        .distinct()
    )
    return list(rows[:MAX_DATASET_SUMMARIES])


# The experiment list's orders, the first the default; names sort as people read them, case
# aside, on every database (SQLite and a C collation would put "Zeta" before "alpha").
EXPERIMENT_ORDERS: Orders = {
    "name": (Lower("name"), "name"),
    "activity": (F("last_activity").desc(nulls_last=True), Lower("name"), "name"),
    "runs": ("-run_count", Lower("name"), "name"),
}


def list_experiments(
    *, user: Any, lifecycle: str | None = Lifecycle.ACTIVE, text: str = "", order: str = "name"
) -> QuerySet[Experiment]:
    """The experiments `user` may read, with their (live) run count and last activity; `text` keeps
    those whose name, description or a tag contains it, `order` is one of EXPERIMENT_ORDERS."""
    experiments = Experiment.objects.filter(readable_experiments_q(user))
    if lifecycle:
        experiments = experiments.filter(lifecycle=lifecycle)
    experiments = containing_text(experiments, text, tag_model=ExperimentTag, owner="experiment")
    experiments = experiments.annotate(
        # The runs its run table shows: a deleted run is not counted until it is restored. A
        # deleted experiment counts the runs that restoring it brings back.
        run_count=Count(
            "runs",
            filter=Q(runs__lifecycle=Lifecycle.ACTIVE) | Q(runs__deleted_with_experiment=True),
            distinct=True,
        ),
        last_activity=Max("runs__updated_at"),
    ).prefetch_related("tags")
    return ordered(experiments, order, EXPERIMENT_ORDERS)


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
    user: Any,
) -> ExperimentPage:
    """One page of the experiments `user` may read matching MLflow's experiment filter."""
    if not 1 <= max_results <= MAX_RESULTS_LIMIT:
        raise InvalidInput(f"must be between 1 and {MAX_RESULTS_LIMIT}", field="max_results")
    experiments = Experiment.objects.filter(readable_experiments_q(user))
    if lifecycle:
        experiments = experiments.filter(lifecycle=lifecycle)
    result = search.apply_experiment_search(experiments, filter_string=filter_string, order_by=order_by)
    page, next_token = search.page_after(result, cursor=page_token, limit=max_results)
    prefetch_related_objects(page, "tags")
    return ExperimentPage(experiments=page, next_page_token=next_token)


def list_saved_views(*, experiment_ids: Sequence[int]) -> QuerySet[SavedView]:
    """The team's saved run-table views of these experiments, by name."""
    views = SavedView.objects.filter(experiment_id__in=experiment_ids)
    return views.select_related("created_by", "experiment")  # the page shows both


def get_saved_view(*, view_id: int) -> SavedView:
    view = SavedView.objects.select_related("experiment").filter(pk=view_id).first()
    if view is None:
        raise NotFound(f"saved view {view_id} does not exist", field="view_id")
    return view
