"""Run search: a parsed filter compiled to a Q over Run, and the run order's sort expressions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db.models import (
    Case,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    FilteredRelation,
    FloatField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    When,
)
from django.db.models.functions import Cast, Left

from tracker.models import DatasetInput, MetricKey, MetricSummary, Param, Run, Tag
from tracker.models.runs import VALUE_PREFIX

from .grammar import (
    NULL_OPS,
    SORT_ONLY_ATTRIBUTE,
    STRING_ATTRIBUTES,
    TIME_ATTRIBUTES,
    Comparison,
    compile_node,
    number_q,
    parse_filter,
    string_q,
    time_q,
)
from .paging import OrderClause, SearchResult, parse_order_by, sorted_result, split_result

_NULLABLE_ATTRIBUTES = {"user_id": "user", "end_time": "end_time"}  # guarded so NOT stays two-valued
# A number the database can cast without erroring: PostgreSQL rejects '1e999' and 'abc', so the
# CASE only casts values that match (both Python's re and PostgreSQL's ARE accept this pattern).
_NUMERIC_PATTERN = r"\A[-+]?(\d{1,30}(\.\d{0,30})?|\.\d{1,30})([eE][-+]?\d{1,2})?\Z"
_AS_NUMBER = Case(
    When(value__regex=_NUMERIC_PATTERN, then=Cast("value", FloatField())), output_field=FloatField()
)


def _rows(entity: str, key: str) -> QuerySet:
    """The row holding the outer run's metric summary, param or tag for `key`."""
    if entity == "metric":
        # The key's id as an uncorrelated subquery: PostgreSQL looks it up once (an InitPlan)
        # instead of joining the key table inside every run's subquery.
        key_id = Subquery(MetricKey.objects.filter(name=key).values("id")[:1])
        return MetricSummary.objects.filter(run=OuterRef("pk"), key_id=key_id)
    return (Param if entity == "param" else Tag).objects.filter(run=OuterRef("pk"), key=key)


def _equal_values(op: str, value: Any) -> Q | None:
    """For = and IN on a param or tag: the same test on the value's indexed prefix, so the
    database can find candidate rows through (key, left(value, 200), run) instead of scanning."""
    if op == "=":
        return Q(value_prefix=value[:VALUE_PREFIX])
    if op == "IN":
        return Q(value_prefix__in=[item[:VALUE_PREFIX] for item in value])
    return None


def _compile_comparison(cmp: Comparison) -> Q:
    op, value = cmp.op, cmp.value
    if cmp.entity == "attribute":
        return _compile_attribute(cmp)
    if cmp.entity == "dataset":
        rows = DatasetInput.objects.filter(run=OuterRef("pk"))
        return Q(Exists(rows.filter(string_q(cmp.key, op, value))))
    rows = _rows(cmp.entity, cmp.key)
    if op in NULL_OPS:  # IS NULL: the run never logged this key
        return ~Q(Exists(rows)) if op == "IS NULL" else Q(Exists(rows))
    if cmp.entity == "metric":
        cond = number_q("last_value", op, float(value))  # type: ignore[arg-type]
        if op == "!=":  # NaN (stored as NULL) differs from every number, as in MLflow
            cond |= Q(last_value__isnull=True)
        return Q(Exists(rows.filter(cond)))
    if isinstance(value, int | float):  # unquoted number: only values that parse as numbers can match
        numeric = rows.annotate(number=_AS_NUMBER)
        return Q(Exists(numeric.filter(number_q("number", op, float(value)))))
    prefix = _equal_values(op, value)
    if prefix is not None:
        rows = rows.annotate(value_prefix=Left("value", VALUE_PREFIX)).filter(prefix)
    return Q(Exists(rows.filter(string_q("value", op, value))))


def _compile_attribute(cmp: Comparison) -> Q:
    op, value = cmp.op, cmp.value
    guard = _NULLABLE_ATTRIBUTES.get(cmp.key)
    if op in NULL_OPS:
        return Q(**{f"{guard or cmp.key}__isnull": op == "IS NULL"})
    if cmp.key in TIME_ATTRIBUTES:
        cond = time_q(cmp.key, op, value)  # type: ignore[arg-type]
    else:
        cond = string_q(STRING_ATTRIBUTES[cmp.key], op, value)
    # The guard keeps the predicate two-valued on NULL, so NOT / OR over it stay plain logic.
    return Q(**{f"{guard}__isnull": False}) & cond if guard else cond


def compile_filter(text: str | None) -> Q:
    """The filter string as a Q over Run; Q() when there is no filter."""
    node = parse_filter(text)
    return Q() if node is None else compile_node(node, _compile_comparison)


def _joined(clause: OrderClause) -> str:
    """The alias of the param or tag row a sort clause joins (see _join_sorted_rows)."""
    return f"search_{clause.entity}_{abs(hash(clause.key))}"


def _join_sorted_rows(queryset: QuerySet[Run], clauses: Sequence[OrderClause]) -> QuerySet[Run]:
    """Params and tags to sort by, joined (LEFT JOIN … AND key = …) rather than looked up per
    run: PostgreSQL hashes the key's rows once instead of probing an index for every match."""
    relations = {
        _joined(clause): FilteredRelation(
            f"{clause.entity}s", condition=Q(**{f"{clause.entity}s__key": clause.key})
        )
        for clause in clauses
        if clause.entity in ("param", "tag")
    }
    return queryset.annotate(**relations) if relations else queryset


_PREFIXED = {"param_prefix": "param", "tag_prefix": "tag"}  # a value's first characters


def _sort_expression(clause: OrderClause) -> tuple[Any, str]:
    if clause.entity in _PREFIXED:
        joined = _joined(OrderClause(_PREFIXED[clause.entity], clause.key))
        return Left(F(f"{joined}__value"), VALUE_PREFIX), "string"
    if clause.entity in ("param", "tag"):
        return F(f"{_joined(clause)}__value"), "string"
    if clause.entity == "metric":
        rows = _rows(clause.entity, clause.key).values("last_value")[:1]
        return Subquery(rows), "number"
    if clause.key in TIME_ATTRIBUTES:
        return F(clause.key), "datetime"
    if clause.key == SORT_ONLY_ATTRIBUTE:
        return ExpressionWrapper(F("end_time") - F("start_time"), output_field=DurationField()), "duration"
    return F(STRING_ATTRIBUTES[clause.key]), "string"


def apply_search(
    queryset: QuerySet[Run],
    *,
    filter_string: str | None,
    order_by: Sequence[str] | None,
    split_metric_sort: bool = False,
) -> SearchResult:
    """Filter, annotate the sort values and order; start_time DESC, uuid break ties.

    `split_metric_sort` reads a metric-first order in two parts (see split_result): a page of a
    large experiment then costs its own rows, and a short page one query more.
    """
    clauses = parse_order_by(order_by)
    for tie_breaker in (OrderClause("attribute", "start_time", True), OrderClause("attribute", "run_id")):
        if all((c.entity, c.key) != (tie_breaker.entity, tie_breaker.key) for c in clauses):
            clauses.append(tie_breaker)
    filtered = _join_sorted_rows(queryset.filter(compile_filter(filter_string)), clauses)
    first = clauses[0]
    if split_metric_sort and first.entity in ("param", "tag"):
        return _split_by_value(filtered, clauses)
    if not split_metric_sort or first.entity != "metric":
        return sorted_result(filtered, clauses, _sort_expression, not_null=_never_null)
    # Sorting by a metric: the runs with a value come from the summary index in order (a page
    # reads about its own rows, not every match), then the runs without one (NULLs last).
    key_id = Subquery(MetricKey.objects.filter(name=first.key).values("id")[:1])
    with_value = filtered.filter(metric_summaries__key_id=key_id, metric_summaries__last_value__isnull=False)
    has_value = _rows("metric", first.key).filter(last_value__isnull=False)
    return split_result(
        filtered,
        clauses,
        _sort_expression,
        not_null=_never_null,
        with_value=with_value,
        value=F("metric_summaries__last_value"),
        without_value=filtered.exclude(Exists(has_value)),
    )


def _split_by_value(filtered: QuerySet[Run], clauses: list[OrderClause]) -> SearchResult:
    """A param- or tag-first sort in two parts, as for metrics: the runs with the key ordered by
    the value's first 200 characters (the order of the (key, left(value, 200), run) index), then
    by the whole value; then the runs without it. Values shorter than 200 characters (nearly
    all) sort exactly as by the whole value."""
    first = clauses[0]
    joined = _joined(first)
    prefix = OrderClause(f"{first.entity}_prefix", first.key, first.descending)
    return split_result(
        filtered,
        [prefix, *clauses],
        _sort_expression,
        not_null=_never_null,
        with_value=filtered.filter(**{f"{joined}__isnull": False}),
        value=Left(F(f"{joined}__value"), VALUE_PREFIX),
        without_value=filtered.filter(**{f"{joined}__isnull": True}),
        value_prefix_length=VALUE_PREFIX,
    )


def _never_null(clause: OrderClause) -> bool:
    """Run columns that are NOT NULL: their sort needs no NULLS LAST, so indexes serve it."""
    return clause.entity == "attribute" and clause.key in ("start_time", "run_id", "run_name", "status")
