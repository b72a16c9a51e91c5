"""Logged-model search: MLflow's `search_logged_models` filter and order_by, compiled to ORM expressions.

The filter uses the run-search grammar (tracker.search.grammar parses it; AND, and here also OR,
NOT and parentheses), with a logged model's identifiers:
- attributes `name`, `model_id`, `model_type`, `status`, `source_run_id` (strings: = != LIKE ILIKE
  IN NOT IN) and `creation_timestamp`, `last_updated_timestamp` (milliseconds: = != > >= < <=);
- `params.<key>`, `tags.<key>` (strings, plus IS NULL / IS NOT NULL);
- `metrics.<key>` (numbers): as in MLflow, a model matches when *any* of its metric points with
  that key matches, and only points on the requested datasets count when datasets are given.
Order is by attributes or `metrics.<key>` (the newest point's value, optionally on one dataset),
missing values last, then by creation time (newest first) and model id, as MLflow does.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass
from functools import reduce
from typing import Any

from django.db.models import Case, Exists, F, OrderBy, OuterRef, Q, QuerySet, Subquery, Value, When
from django.db.models.fields import FloatField

from config.epoch import from_ms
from config.exceptions import InvalidInput
from tracker.models import LoggedModel, LoggedModelMetric, LoggedModelParam, LoggedModelStatus, LoggedModelTag

# The run search's parser and comparison helpers are shared rather than written twice.
from .grammar import (
    ENTITY_PREFIXES,
    MAX_COMPARISONS,
    BoolOp,
    Comparison,
    Node,
    ToAst,
    number_q,
    parse_filter,
    split_identifier,
    string_q,
    time_q,
)

STRING_ATTRIBUTES = {
    "name": "name",
    "model_id": "model_id",
    "model_type": "model_type",
    "status": "status",
    "source_run_id": "source_run__uuid",
}
TIME_ATTRIBUTES = {"creation_timestamp": "created_at", "last_updated_timestamp": "updated_at"}
ATTRIBUTE_ALIASES = {
    "creation_time": "creation_timestamp",
    "creation_timestamp_ms": "creation_timestamp",
    "last_updated_time": "last_updated_timestamp",
    "last_updated_timestamp_ms": "last_updated_timestamp",
}
_STRING_OPS = ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN")
_NUMBER_OPS = ("=", "!=", ">", ">=", "<", "<=")
_NULL_OPS = ("IS NULL", "IS NOT NULL")
_ALLOWED_OPS = {
    "metric": _NUMBER_OPS,
    "time": _NUMBER_OPS,
    "attribute": _STRING_OPS,
    "param": (*_STRING_OPS, *_NULL_OPS),
    "tag": (*_STRING_OPS, *_NULL_OPS),
}
_VALID_ATTRIBUTES = sorted([*STRING_ATTRIBUTES, *TIME_ATTRIBUTES, *ATTRIBUTE_ALIASES])
_PREFIXES = {prefix: entity for prefix, entity in ENTITY_PREFIXES.items() if entity != "dataset"}
_SHORT_STATUSES = {status.removeprefix("LOGGED_MODEL_"): status for status in LoggedModelStatus.values}
# Each dataset adds a term to one OR, each order clause a subquery; SQLite nests terms one level
# each and allows 1000 levels, so a request stays well below.
MAX_DATASETS = MAX_COMPARISONS
MAX_ORDER_CLAUSES = 20


@dataclass(frozen=True)
class DatasetFilter:
    name: str
    digest: str = ""  # empty: any digest of that dataset


@dataclass(frozen=True)
class ModelOrder:
    field_name: str
    ascending: bool = True
    dataset_name: str = ""
    dataset_digest: str = ""


def _identifier(text: str, *, field: str) -> tuple[str, str]:
    """(kind, key): kind is metric, param, tag, attribute (a string) or time."""
    entity, key = split_identifier(text, field, _PREFIXES, ["metrics", "params", "tags", "attributes"])
    if entity != "attribute":
        return entity, key
    key = ATTRIBUTE_ALIASES.get(key, key)
    if key in TIME_ATTRIBUTES:
        return "time", key
    if key not in STRING_ATTRIBUTES:
        raise InvalidInput(
            f"Invalid logged model attribute '{key}'. Valid values are {_VALID_ATTRIBUTES}", field=field
        )
    return "attribute", key


class _ToComparisons(ToAst):
    """The shared grammar's tree, with comparisons checked against a logged model's identifiers."""

    def comparison(self, items: list) -> Comparison:
        ident, op, value = (*items, None) if len(items) == 2 else items
        kind, key = _identifier(str(ident), field="filter")
        op = " ".join(str(op).upper().split())
        name = str(ident)
        if op not in _ALLOWED_OPS[kind]:
            allowed = ", ".join(_ALLOWED_OPS[kind])
            raise InvalidInput(
                f"Invalid comparator '{op}' for {name}. Valid comparators: {allowed}", field="filter"
            )
        for item in value if isinstance(value, tuple) else (value,):
            numeric = kind in ("metric", "time")
            if numeric and isinstance(item, str):
                raise InvalidInput(f"Expected numeric value type for {name}, got '{item}'", field="filter")
            if not numeric and item is not None and not isinstance(item, str):
                raise InvalidInput(f"Expected a quoted string value for {name}, got {item}", field="filter")
            if kind == "time":
                try:
                    from_ms(int(item))
                except OverflowError:
                    raise InvalidInput(f"Number out of range for {name}: {item}", field="filter") from None
        return Comparison(kind, key, op, value)


def _dataset_q(datasets: Sequence[DatasetFilter]) -> Q:
    """Metric points on any of the datasets (a digest narrows its dataset to one version)."""
    parts = [Q(dataset_name=d.name, **({"dataset_digest": d.digest} if d.digest else {})) for d in datasets]
    return reduce(operator.or_, parts)


def _full_status(value: Any) -> Any:
    return _SHORT_STATUSES.get(value, value)


def _compile(node: Node, datasets: Sequence[DatasetFilter]) -> Q:
    if isinstance(node, BoolOp):
        parts = [_compile(item, datasets) for item in node.items]
        if node.op == "NOT":
            return ~parts[0]
        return reduce(operator.and_ if node.op == "AND" else operator.or_, parts)
    cmp = node
    if cmp.entity == "attribute":
        value = cmp.value
        if cmp.key == "status":  # `status = 'READY'` reads as well as the full enum name
            value = tuple(_full_status(v) for v in value) if isinstance(value, tuple) else _full_status(value)
        condition = string_q(STRING_ATTRIBUTES[cmp.key], cmp.op, value)
        if cmp.key == "source_run_id":  # keeps the predicate two-valued when there is no source run
            condition &= Q(source_run__isnull=False)
        return condition
    if cmp.entity == "time":
        return time_q(TIME_ATTRIBUTES[cmp.key], cmp.op, int(cmp.value))  # type: ignore[arg-type]
    if cmp.entity == "metric":
        points = LoggedModelMetric.objects.filter(model=OuterRef("pk"), key=cmp.key)
        if datasets:
            points = points.filter(_dataset_q(datasets))
        matching = Q(is_nan=False) & number_q("value", cmp.op, float(cmp.value))  # type: ignore[arg-type]
        if cmp.op == "!=":  # NaN differs from every number
            matching |= Q(is_nan=True)
        return Q(Exists(points.filter(matching)))
    rows = (LoggedModelParam if cmp.entity == "param" else LoggedModelTag).objects.filter(
        model=OuterRef("pk"), key=cmp.key
    )
    if cmp.op in _NULL_OPS:
        return ~Q(Exists(rows)) if cmp.op == "IS NULL" else Q(Exists(rows))
    return Q(Exists(rows.filter(string_q("value", cmp.op, cmp.value))))


def _has_metric_comparison(node: Node) -> bool:
    if isinstance(node, BoolOp):
        return any(_has_metric_comparison(item) for item in node.items)
    return node.entity == "metric"


def compile_filter(filter_string: str | None, datasets: Sequence[DatasetFilter] = ()) -> Q:
    """The filter as a Q over LoggedModel. With datasets and no metric comparison, MLflow keeps
    the models that have any metric on those datasets."""
    if len(datasets) > MAX_DATASETS:
        raise InvalidInput(f"{len(datasets)} datasets; the limit is {MAX_DATASETS}", field="datasets")
    node = parse_filter(filter_string, transformer=_ToComparisons)
    condition = Q() if node is None else _compile(node, datasets)
    if datasets and (node is None or not _has_metric_comparison(node)):
        points = LoggedModelMetric.objects.filter(_dataset_q(datasets), model=OuterRef("pk"))
        condition &= Q(Exists(points))
    return condition


def _order_expression(order: ModelOrder) -> Any:
    name = order.field_name.strip()
    if "." in name:
        entity, key = name.split(".", 1)
        if entity != "metrics":
            raise InvalidInput(
                f"Invalid order by field name: {entity}, only `metrics.<name>` is allowed.", field="order_by"
            )
        points = LoggedModelMetric.objects.filter(model=OuterRef("pk"), key=key.strip("`"))
        if order.dataset_name:
            points = points.filter(dataset_name=order.dataset_name)
        if order.dataset_digest:
            points = points.filter(dataset_digest=order.dataset_digest)
        newest = points.order_by("-timestamp", "-step").annotate(
            number=Case(When(is_nan=True, then=Value(None)), default=F("value"), output_field=FloatField())
        )
        return Subquery(newest.values("number")[:1], output_field=FloatField())
    if order.dataset_name or order.dataset_digest:
        raise InvalidInput("dataset_name and dataset_digest only apply to metrics", field="order_by")
    key = ATTRIBUTE_ALIASES.get(name, name)
    if key in TIME_ATTRIBUTES:
        return F(TIME_ATTRIBUTES[key])
    if key in STRING_ATTRIBUTES:
        return F(STRING_ATTRIBUTES[key])
    raise InvalidInput(f"Invalid order by field name: {order.field_name}.", field="order_by")


def _canonical(order: ModelOrder) -> str:
    name = order.field_name.strip()
    return name if "." in name else ATTRIBUTE_ALIASES.get(name, name)


def ordering(orders: Sequence[ModelOrder]) -> list[OrderBy]:
    """ORDER BY terms: the requested ones (missing values last), then creation time DESC, model id."""
    if len(orders) > MAX_ORDER_CLAUSES:
        raise InvalidInput(f"{len(orders)} clauses; the limit is {MAX_ORDER_CLAUSES}", field="order_by")
    terms = []
    for order in orders:
        if order.dataset_digest and not order.dataset_name:
            raise InvalidInput("dataset_digest needs dataset_name as well", field="order_by")
        expression = _order_expression(order)
        terms.append(expression.asc(nulls_last=True) if order.ascending else expression.desc(nulls_last=True))
    named = {_canonical(order) for order in orders}
    if "creation_timestamp" not in named:
        terms.append(F("created_at").desc())
    if "model_id" not in named:
        terms.append(F("model_id").asc())
    return terms


def apply_search(
    models: QuerySet[LoggedModel],
    *,
    filter_string: str | None,
    datasets: Sequence[DatasetFilter] = (),
    orders: Sequence[ModelOrder] = (),
) -> QuerySet[LoggedModel]:
    return models.filter(compile_filter(filter_string, datasets)).order_by(*ordering(orders))
