"""The run table: fixed run columns plus one column per param and metric on the page.

Sorting is done by the database through the run-search `order_by`, never by django-tables2,
so every header links to the same page with a new `order_by` and no page token.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import timedelta
from html import escape

import django_tables2 as tables
from django.http import QueryDict
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from tracker.models import DatasetInput, Run, RunStatus
from tracker.selectors import KeySets, MetricValue, RunData

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


def format_number(value: float | None) -> str:
    """Every number in the run table: six significant digits (the full value goes in a title)."""
    if value is None:
        return "—"
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return f"{value:.6g}"


def exact_number(value: float | None) -> str:
    """A number as stored, every digit kept (the shortest text that reads back the same float)."""
    return repr(value) if value is not None and math.isfinite(value) else format_number(value)


def format_metric(metric: MetricValue, *, exact: bool = False) -> str:
    if metric.is_nan or metric.value is None:
        return "NaN"
    return exact_number(metric.value) if exact else format_number(metric.value)


def number_cell(value: float | None, note: str = ""):
    """A number at the table's precision, with its full value (and `note`) on hover."""
    title = f"{exact_number(value)} {note}".strip()
    # Plain escaping, not format_html: a page has thousands of cells, and format_html's
    # conditional_escape of each argument was a third of the rows' rendering time.
    return SafeString(f'<span title="{escape(title)}">{format_number(value)}</span>')


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


# Attribute columns a user may show besides the name: (URL value, header). The first four show
# when nothing was chosen; "experiment" too when the table holds several experiments.
ATTRIBUTE_COLUMNS = {
    "status": "Status",
    "start": "Start (UTC)",
    "duration": "Duration",
    "user": "User",
    "experiment": "Experiment",
    "commit": "Commit",
    "run_id": "Run ID",
}
DEFAULT_ATTRIBUTES = ("status", "start", "duration", "user")
METRIC_KINDS = {"metric": "latest", "metric_min": "min", "metric_max": "max"}
# The order of the column groups in the table and the picker, and which show by default.
KIND_ORDER = ("attr", "metric", "metric_min", "metric_max", "param", "tag", "dataset")
SHOWN_BY_DEFAULT = {"metric", "param", "dataset"}
# Keys of each kind shown before the picker is used: a run logging thousands of metrics would
# otherwise make a table of thousands of columns (megabytes of HTML per page).
DEFAULT_KEYS_SHOWN = 30
_KIND_NAMES = {"metric": "metrics", "param": "params", "dataset": "datasets"}


@dataclass(frozen=True)
class ColumnChoice:
    """One column the user may show or hide; `value` is how the URL names it (`param:lr`)."""

    kind: str  # attr | metric | metric_min | metric_max | param | tag | dataset
    key: str
    shown: bool

    @property
    def value(self) -> str:
        return f"{self.kind}:{self.key}"

    @property
    def label(self) -> str:
        if self.kind == "attr":
            return ATTRIBUTE_COLUMNS[self.key]
        return f"{self.key} ({METRIC_KINDS[self.kind]})" if self.kind in METRIC_KINDS else self.key


def choose_columns(
    *,
    key_sets: KeySets,
    chosen: list[str] | None,
    several_experiments: bool = False,
    keys_shown: int | None = DEFAULT_KEYS_SHOWN,
) -> list[ColumnChoice]:
    """Every column the runs could show, marked shown when `chosen` names it.

    `chosen` is the URL's `columns` list, None when the user never used the picker: then the
    usual attributes and the first `keys_shown` latest metrics, params and datasets show (all
    of them for None: a CSV export has no page to keep small), so a shared link shows exactly
    the columns its author saw.
    """
    defaults = {f"attr:{name}" for name in DEFAULT_ATTRIBUTES}
    if several_experiments:
        defaults.add("attr:experiment")
    keys_of = {
        "attr": list(ATTRIBUTE_COLUMNS),
        "metric": key_sets.metrics,
        "metric_min": key_sets.metrics,
        "metric_max": key_sets.metrics,
        "param": key_sets.params,
        "tag": key_sets.tags,
        "dataset": key_sets.datasets,
    }
    picked = None if chosen is None else set(chosen)
    choices = []
    for kind in KIND_ORDER:
        for index, key in enumerate(keys_of[kind]):
            value = f"{kind}:{key}"
            if picked is not None:
                shown = value in picked
            else:
                capped = keys_shown is not None and index >= keys_shown
                shown = (kind in SHOWN_BY_DEFAULT and not capped) or value in defaults
            choices.append(ColumnChoice(kind, key, shown))
    return choices


def default_columns_note(*, key_sets: KeySets, chosen: list[str] | None) -> str:
    """What the default columns leave out, when a kind has more keys than DEFAULT_KEYS_SHOWN."""
    if chosen is not None:
        return ""
    keys_of = {"metric": key_sets.metrics, "param": key_sets.params, "dataset": key_sets.datasets}
    left_out = [
        f"{DEFAULT_KEYS_SHOWN} of {len(keys):,} {_KIND_NAMES[kind]}"
        for kind, keys in keys_of.items()
        if len(keys) > DEFAULT_KEYS_SHOWN
    ]
    if not left_out:
        return ""
    return f"Showing the first {' and '.join(left_out)}: pick others under Columns."


def cell_text(data: RunData, choice: ColumnChoice, *, exact: bool = False) -> str:
    """A cell's value as text, for finding columns that never change and, `exact` (every digit of
    a number, not the table's six), for CSV export."""
    run = data.run
    if choice.kind == "attr":
        return {
            "status": lambda: run.status,
            "start": lambda: run.start_time.strftime("%Y-%m-%d %H:%M:%S"),
            "duration": lambda: format_duration(run.duration),
            "user": lambda: run.user.username if run.user else "",
            "experiment": lambda: run.experiment.name,
            "commit": lambda: run.code_commit,
            "run_id": lambda: run.uuid,
        }[choice.key]()
    if choice.kind in METRIC_KINDS:
        metric = data.metrics.get(choice.key)
        if metric is None:
            return ""
        if choice.kind == "metric":
            return format_metric(metric, exact=exact)
        bound = metric.min_value if choice.kind == "metric_min" else metric.max_value
        return exact_number(bound) if exact else format_number(bound)
    if choice.kind == "dataset":
        return "; ".join(dataset_label(d, short=False) for d in data.datasets if d.name == choice.key)
    values = data.params if choice.kind == "param" else data.tags
    return values.get(choice.key, "")


def dataset_label(dataset: DatasetInput, *, short: bool = True) -> str:
    """`2.1 0a1b2c3d (training)`: version, the digest (its start, on screen) and the context."""
    context = f"({dataset.context})" if dataset.context else ""
    digest = dataset.digest[:8] if short else dataset.digest
    return " ".join(part for part in (dataset.version, digest, context) if part)


def constant_columns(rows: list[RunData], choices: list[ColumnChoice]) -> set[str]:
    """Values of the shown data columns whose cells are the same in every row (two rows or more)."""
    if len(rows) < 2:
        return set()
    return {
        choice.value
        for choice in choices
        if choice.shown
        and choice.kind not in ("attr",)
        and len({cell_text(row, choice) for row in rows}) == 1
    }


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
    def __init__(self, key: str, *, entity: str = "params"):
        kind = entity[:-1]
        super().__init__(
            accessor=entity,
            verbose_name=key,
            sort_key=search_identifier(entity, key),
            attrs={"th": {"class": kind}, "td": {"class": kind}},
        )
        self.key = key

    def render(self, value: dict[str, str]):
        text = value.get(self.key)
        if text is None:
            return MISSING
        escaped = escape(text)  # once for both places (see number_cell)
        return SafeString(f'<span title="{escaped}">{escaped}</span>')


class MetricColumn(SortableColumn):
    def __init__(self, key: str, *, kind: str = "metric"):
        # Best-first is the usual question for a metric, so its first click sorts descending.
        # Only the latest value is sortable: the search language sorts on that.
        latest = kind == "metric"
        super().__init__(
            accessor="metrics",
            verbose_name=key if latest else f"{key} ({METRIC_KINDS[kind]})",
            sort_key=search_identifier("metrics", key) if latest else None,
            descending_first=True,
            attrs={"th": {"class": "num metric"}, "td": {"class": "num metric"}},
        )
        self.key, self.kind = key, kind

    def render(self, value: dict[str, MetricValue]):
        metric = value.get(self.key)
        if metric is None:
            return MISSING
        if self.kind == "metric":
            number = math.nan if metric.is_nan or metric.value is None else metric.value
            return number_cell(number, f"at step {metric.step}")
        return number_cell(metric.min_value if self.kind == "metric_min" else metric.max_value)


class DatasetColumn(tables.Column):
    def __init__(self, name: str):
        super().__init__(
            accessor="datasets",
            verbose_name=name,
            orderable=False,
            empty_values=(),
            attrs={"th": {"class": "dataset"}, "td": {"class": "dataset"}},
        )
        self.name = name

    def render(self, value: list[DatasetInput]):
        used = [dataset for dataset in value if dataset.name == self.name]
        if not used:
            return MISSING
        return SafeString(  # escaped here (see number_cell)
            " ".join(
                f'<span title="digest {escape(d.digest)} · {escape(d.context or "input")}">'
                f"{escape(dataset_label(d))}</span>"
                for d in used
            )
        )


class AttributeColumn(SortableColumn):
    def __init__(self, key: str):
        sort_keys = {
            "status": "attributes.status",
            "start": "attributes.start_time",
            "duration": "attributes.duration",
            "user": "attributes.user_id",
            "run_id": "attributes.run_id",
        }
        super().__init__(
            accessor="run",
            verbose_name=ATTRIBUTE_COLUMNS[key],
            sort_key=sort_keys.get(key),
            descending_first=key == "start",
            empty_values=(),
            attrs={"td": {"class": f"attr-{key}" + (" num" if key == "duration" else "")}},
        )
        self.key = key

    def render(self, value: Run, record: RunData):
        if self.key == "status":
            known = value.status if value.status in RunStatus.values else "unknown"
            return format_html('<span class="badge status-{}">{}</span>', known.lower(), value.status)
        if self.key == "start":
            return value.start_time.strftime("%Y-%m-%d %H:%M:%S")
        if self.key == "duration" and value.duration is None:
            return "running" if value.status == RunStatus.RUNNING else ""
        if self.key == "commit":
            return format_html('<code title="{}">{}</code>', value.code_commit, value.code_commit[:10])
        if self.key == "run_id":
            return format_html("<code>{}</code>", value.uuid)
        # The experiment's name and the user's are text anyone with a grant could have written.
        return escape(cell_text(record, ColumnChoice("attr", self.key, True)))


def _run_link(record: RunData) -> str:
    return reverse("dashboard:run-detail", args=[record.run.uuid])


class RunTable(tables.Table):
    select = tables.Column(
        accessor="run__uuid",
        verbose_name="Select",
        orderable=False,
        attrs={"th": {"class": "select"}, "td": {"class": "select"}},
    )
    name = SortableColumn(
        accessor="run__name",
        verbose_name="Name",
        sort_key="attributes.run_name",
        linkify=_run_link,
        attrs={
            "a": {"title": lambda record: record.run.name},
            "th": {"class": "name"},
            "td": {"class": "name"},
        },
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
        columns: list[ColumnChoice],
        query: QueryDict,
        order_by: list[str],
        selected: list[str],
    ):
        extra: list[tuple[str, tables.Column]] = []
        for index, choice in enumerate(choice for choice in columns if choice.shown):
            column: tables.Column
            if choice.kind == "attr":
                column = AttributeColumn(choice.key)
            elif choice.kind in METRIC_KINDS:
                column = MetricColumn(choice.key, kind=choice.kind)
            elif choice.kind == "dataset":
                column = DatasetColumn(choice.key)
            else:
                column = ParamColumn(choice.key, entity=f"{choice.kind}s")
            extra.append((f"c{index}-{choice.kind}", column))
        super().__init__(data, extra_columns=extra)
        self.selected = set(selected)
        # Column groups for the header's first row: (label, css class, span), in column order.
        self.groups: list[tuple[str, str, int]] = []
        for _, column in extra:
            group = _group_of(column)
            if self.groups and self.groups[-1][0] == group[0]:
                self.groups[-1] = (group[0], group[1], self.groups[-1][2] + 1)
            else:
                self.groups.append((group[0], group[1], 1))
        for bound in self.columns.iterall():
            column = bound.column  # this table's own copy, so setting `sort` is safe
            if isinstance(column, SortableColumn) and column.sort_key:
                column.sort = self._sort_link(column, query, order_by)

    def body(self) -> list[SafeString]:
        """The rows as HTML, one string per row, built without django-tables2's per-cell
        machinery (bound rows and cells cost about 5 ms per 100 cells; a page has thousands)."""
        columns = [(bound.name, bound.column, bound.attrs["td"].as_html()) for bound in self.columns]
        rows = []
        for index, record in enumerate(self.data.data):
            cells = [
                f"<td {attrs}>{self._cell(name, column, record)}</td>" for name, column, attrs in columns
            ]
            rows.append(mark_safe(f'<tr class="{"odd" if index % 2 else "even"}">{"".join(cells)}</tr>'))
        return rows

    def _cell(self, name: str, column: tables.Column, record: RunData) -> str:
        if name == "select":
            return self.render_select(record.run.uuid, record)
        if name == "name":
            return format_html(
                '<a title="{}" href="{}">{}</a>', record.run.name, _run_link(record), record.run.name
            )
        value = getattr(record, column.accessor)  # params, metrics, tags, datasets or run
        if isinstance(column, AttributeColumn):
            return column.render(value, record)
        return column.render(value)

    @staticmethod
    def _sort_link(column: SortableColumn, query: QueryDict, order_by: list[str]) -> SortLink:
        sorted_by, descending = current_order(order_by)
        active = column.sort_key == sorted_by
        next_descending = not descending if active else column.descending_first
        params = query.copy()
        params.pop("page_token", None)
        params.setlist("order_by", [f"{column.sort_key} {'DESC' if next_descending else 'ASC'}"])
        state = ("descending" if descending else "ascending") if active else "none"
        return SortLink(url="?" + params.urlencode(), state=state)

    def render_select(self, value: str, record: RunData):
        return format_html(
            '<input type="checkbox" class="run-select" value="{}" aria-label="Select run {}"{}>',
            value,
            record.run.name,
            " checked" if value in self.selected else "",
        )


def _group_of(column: tables.Column) -> tuple[str, str]:
    if isinstance(column, AttributeColumn):
        return "Run", "attr"
    if isinstance(column, MetricColumn):
        return "Metrics", "metric"
    if isinstance(column, DatasetColumn):
        return "Datasets", "dataset"
    assert isinstance(column, ParamColumn)
    return ("Params", "param") if column.accessor == "params" else ("Tags", "tag")
