"""Run-table groups: the matching runs grouped by param values, with a metric's mean, min and max,
computed by the database in one GROUP BY query."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import Aggregate, Avg, Count, F, Max, Min, OuterRef, Subquery

from config.exceptions import InvalidInput
from tracker import search
from tracker.models import Experiment, Lifecycle, MetricKey, MetricSummary, Param

from .runs import _searched_runs

MAX_GROUPS = 500  # a table of more groups than this is no summary; the page says so
MAX_GROUP_KEYS = 5


@dataclass(frozen=True)
class RunGroup:
    values: tuple[str | None, ...]  # one per grouped param; None: the runs never logged it
    count: int
    mean: float | None  # of the chosen metric's latest values; None without a metric
    min: float | None
    max: float | None


@dataclass(frozen=True)
class GroupPage:
    groups: list[RunGroup]
    truncated: bool  # more than MAX_GROUPS groups matched


def group_runs(
    *,
    experiment_ids: Sequence[int | str | Experiment],
    group_by: Sequence[str],
    filter_string: str | None = None,
    metric: str | None = None,
    lifecycle: str | None = Lifecycle.ACTIVE,
    user: Any,
) -> GroupPage:
    """A row per distinct combination of the `group_by` params among the matching runs."""
    if not group_by:
        raise InvalidInput("name at least one param to group by", field="group_by")
    if len(group_by) > MAX_GROUP_KEYS:
        raise InvalidInput(f"group by at most {MAX_GROUP_KEYS} params", field="group_by")
    runs = _searched_runs(experiment_ids, lifecycle, user).filter(search.compile_filter(filter_string))
    names = [f"group_{index}" for index in range(len(group_by))]
    annotations = {
        name: Subquery(Param.objects.filter(run=OuterRef("pk"), key=key).values("value")[:1])
        for name, key in zip(names, group_by, strict=True)
    }
    aggregates: dict[str, Aggregate] = {"run_count": Count("pk")}
    if metric:
        key_id = Subquery(MetricKey.objects.filter(name=metric).values("id")[:1])
        rows = MetricSummary.objects.filter(run=OuterRef("pk"), key_id=key_id).values("last_value")[:1]
        annotations["metric_value"] = Subquery(rows)
        aggregates.update(mean=Avg("metric_value"), low=Min("metric_value"), high=Max("metric_value"))
    grouped = (
        runs.annotate(**annotations)
        .values(*names)
        .annotate(**aggregates)
        .order_by(*(F(name).asc(nulls_last=True) for name in names))[: MAX_GROUPS + 1]
    )
    groups = [
        RunGroup(
            values=tuple(row[name] for name in names),
            count=row["run_count"],
            mean=row.get("mean"),
            min=row.get("low"),
            max=row.get("high"),
        )
        for row in grouped
    ]
    return GroupPage(groups=groups[:MAX_GROUPS], truncated=len(groups) > MAX_GROUPS)


def group_filter(*, filter_string: str | None, group_by: Sequence[str], values: Sequence[str | None]) -> str:
    """The run-search filter that selects one group's runs: the table's filter and its values."""
    parts = [f"({filter_string})"] if filter_string and filter_string.strip() else []
    for key, value in zip(group_by, values, strict=True):
        name = search.display_name("param", key)
        parts.append(
            f"{name} IS NULL" if value is None else f"{name} = '{value.replace(chr(39), chr(39) * 2)}'"
        )
    return " and ".join(parts)
