"""The run table: fixed run columns plus one column per param and metric on the page.

Sorting is done by the database through the run-search `order_by`, never by django-tables2,
so every header links to the same page with a new `order_by` and no page token.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import timedelta

import django_tables2 as tables
from django.http import QueryDict
from django.urls import reverse
from django.utils.html import format_html

from tracker.models import RunStatus
from tracker.selectors import MetricValue, RunData

# The order search_runs applies when the URL names none.
DEFAULT_ORDER = ("attributes.start_time", True)
_PLAIN_KEY = re.compile(r"[\w.\-/]+")
_DIRECTION = re.compile(r"^(?P<ident>.*?)(?:\s+(?P<dir>asc|desc))?\s*$", re.IGNORECASE | re.DOTALL)
MISSING = format_html('<span class="missing" aria-label="not logged">{}</span>', "—")


def search_identifier(prefix: str, key: str) -> str:
    """`params.lr`, or `metrics.`val loss`` when the key needs quoting in the search language."""
    if _PLAIN_KEY.fullmatch(key):
        return f"{prefix}.{key}"
    if "`" not in key:
        return f"{prefix}.`{key}`"
    return f'{prefix}."{key.replace(chr(34), chr(34) * 2)}"'


def current_order(order_by: list[str]) -> tuple[str, bool]:
    """(identifier, descending) of the first sort key, as the headers show it."""
    if not order_by or not order_by[0].strip():
        return DEFAULT_ORDER
    match = _DIRECTION.match(order_by[0].strip())
    return match["ident"].strip(), (match["dir"] or "").lower() == "desc"


def format_metric(metric: MetricValue) -> str:
    if metric.is_nan or metric.value is None:
        return "NaN"
    if math.isinf(metric.value):
        return "Infinity" if metric.value > 0 else "-Infinity"
    return f"{metric.value:.6g}"


def format_duration(duration: timedelta | None) -> str:
    if duration is None:
        return ""
    seconds = duration.total_seconds()
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours < 1:
        return f"{minutes}m {secs:02d}s"
    days, hours = divmod(hours, 24)
    return f"{hours}h {minutes:02d}m" if days < 1 else f"{days}d {hours}h"


@dataclass(frozen=True)
class ColumnChoice:
    """One param or metric the user may show or hide; `value` is how the URL names it."""

    kind: str  # "metric" or "param"
    key: str
    shown: bool

    @property
    def value(self) -> str:
        return f"{self.kind}:{self.key}"


def choose_columns(
    *, param_keys: list[str], metric_keys: list[str], chosen: list[str] | None
) -> list[ColumnChoice]:
    """Every metric and param key, marked shown when `chosen` names it (or when nothing was chosen).

    `chosen` is the URL's `columns` list, None when the user never used the picker, so a
    shared link shows exactly the columns its author picked.
    """
    picked = None if chosen is None else set(chosen)
    return [
        ColumnChoice(kind, key, picked is None or f"{kind}:{key}" in picked)
        for kind, keys in (("metric", metric_keys), ("param", param_keys))
        for key in keys
    ]


@dataclass(frozen=True)
class SortLink:
    url: str
    state: str  # "ascending", "descending" or "none" (the aria-sort values)


class SortableColumn(tables.Column):
    """A column whose header sorts the runs on the server by `sort_key`."""

    def __init__(self, *args, sort_key: str | None = None, descending_first: bool = False, **kwargs):
        super().__init__(*args, orderable=False, **kwargs)
        self.sort_key = sort_key
        self.descending_first = descending_first
        self.sort: SortLink | None = None


class ParamColumn(SortableColumn):
    def __init__(self, key: str):
        super().__init__(
            accessor="params",
            verbose_name=key,
            sort_key=search_identifier("params", key),
            attrs={"th": {"class": "param"}, "td": {"class": "param"}},
        )
        self.key = key

    def render(self, value: dict[str, str]):
        return value.get(self.key, MISSING)


class MetricColumn(SortableColumn):
    def __init__(self, key: str):
        # Best-first is the usual question for a metric, so its first click sorts descending.
        super().__init__(
            accessor="metrics",
            verbose_name=key,
            sort_key=search_identifier("metrics", key),
            descending_first=True,
            attrs={"th": {"class": "num metric"}, "td": {"class": "num metric"}},
        )
        self.key = key

    def render(self, value: dict[str, MetricValue]):
        metric = value.get(self.key)
        if metric is None:
            return MISSING
        return format_html('<span title="step {}">{}</span>', metric.step, format_metric(metric))


class RunTable(tables.Table):
    name = SortableColumn(
        accessor="run__name",
        verbose_name="Name",
        sort_key="attributes.run_name",
        linkify=lambda record: reverse("dashboard:run-detail", args=[record.run.uuid]),
        attrs={"a": {"title": lambda record: record.run.name}},  # long names are cut off by CSS
    )
    status = SortableColumn(accessor="run__status", verbose_name="Status", sort_key="attributes.status")
    start = SortableColumn(
        accessor="run__start_time",
        verbose_name="Start (UTC)",
        sort_key="attributes.start_time",
        descending_first=True,
    )
    duration = SortableColumn(
        accessor="run__duration",
        verbose_name="Duration",
        sort_key="attributes.duration",
        empty_values=(),
        attrs={"td": {"class": "num"}},
    )
    user = SortableColumn(
        accessor="run__user__username", verbose_name="User", sort_key="attributes.user_id", default=""
    )

    class Meta:
        template_name = "includes/run_table.html"
        orderable = False
        attrs = {"class": "data-table run-table"}
        empty_text = "No runs match."

    def __init__(
        self,
        data: list[RunData],
        *,
        param_keys: list[str],
        metric_keys: list[str],
        query: QueryDict,
        order_by: list[str],
    ):
        # Metrics first: they are what runs are compared on; params explain the differences.
        extra = [(f"metric-{i}", MetricColumn(key)) for i, key in enumerate(metric_keys)]
        extra += [(f"param-{i}", ParamColumn(key)) for i, key in enumerate(param_keys)]
        super().__init__(data, extra_columns=extra)
        self.param_count, self.metric_count = len(param_keys), len(metric_keys)
        sorted_by, descending = current_order(order_by)
        for bound in self.columns.iterall():
            column = bound.column  # this table's own copy, so setting `sort` is safe
            if isinstance(column, SortableColumn) and column.sort_key:
                column.sort = self._sort_link(column, query, sorted_by, descending)

    @staticmethod
    def _sort_link(column: SortableColumn, query: QueryDict, sorted_by: str, descending: bool) -> SortLink:
        active = column.sort_key == sorted_by
        next_descending = not descending if active else column.descending_first
        params = query.copy()
        params.pop("page_token", None)
        params.setlist("order_by", [f"{column.sort_key} {'DESC' if next_descending else 'ASC'}"])
        state = ("descending" if descending else "ascending") if active else "none"
        return SortLink(url="?" + params.urlencode(), state=state)

    def render_status(self, value: str):
        known = value if value in RunStatus.values else "unknown"
        return format_html('<span class="badge status-{}">{}</span>', known.lower(), value)

    def render_start(self, value):
        return value.strftime("%Y-%m-%d %H:%M:%S")

    def render_duration(self, value: timedelta | None, record: RunData):
        if value is None:
            return "running" if record.run.status == RunStatus.RUNNING else ""
        return format_duration(value)
