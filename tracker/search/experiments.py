"""Experiment search (MLflow's search_experiments): the run-search grammar over an experiment's
attributes and tags, ordered by attributes and paged by keyset like runs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db.models import Exists, F, OuterRef, Q, QuerySet

from config.exceptions import InvalidInput
from tracker.models import ExperimentTag

from .grammar import (
    EXPERIMENT_ATTRIBUTES,
    EXPERIMENT_TIME_ATTRIBUTES,
    NULL_OPS,
    Comparison,
    ToAst,
    compile_node,
    display_name,
    parse_experiment_identifier,
    parse_filter,
    string_q,
    time_q,
)
from .paging import OrderClause, SearchResult, parse_order_by, sorted_result


class _ExperimentAst(ToAst):
    parse_identifier = staticmethod(parse_experiment_identifier)


def _compile_experiment_comparison(cmp: Comparison) -> Q:
    op, value = cmp.op, cmp.value
    if cmp.entity == "tag":
        rows = ExperimentTag.objects.filter(experiment=OuterRef("pk"), key=cmp.key)
        if op in NULL_OPS:
            return ~Q(Exists(rows)) if op == "IS NULL" else Q(Exists(rows))
        return Q(Exists(rows.filter(string_q("value", op, value))))
    field = EXPERIMENT_ATTRIBUTES[cmp.key]
    if op in NULL_OPS:  # name, id and times are never NULL
        return Q(pk__in=[]) if op == "IS NULL" else Q()
    if cmp.key in EXPERIMENT_TIME_ATTRIBUTES:
        return time_q(field, op, value)  # type: ignore[arg-type]
    if cmp.key == "experiment_id" and op not in ("LIKE", "ILIKE"):
        # Ids are strings on the wire and integers here: text that is no id matches no experiment.
        texts = value if isinstance(value, tuple) else (value,)
        ids = [int(text) for text in texts if isinstance(text, str) and text.isdigit() and len(text) < 19]
        return ~Q(pk__in=ids) if op in ("!=", "NOT IN") else Q(pk__in=ids)
    return string_q(field, op, value)


_EXPERIMENT_SORT_KINDS = {"name": "string", "experiment_id": "number"}


def _experiment_sort_expression(clause: OrderClause) -> tuple[Any, str]:
    return F(EXPERIMENT_ATTRIBUTES[clause.key]), _EXPERIMENT_SORT_KINDS.get(clause.key, "datetime")


def apply_experiment_search(
    queryset: QuerySet[Any], *, filter_string: str | None, order_by: Sequence[str] | None
) -> SearchResult:
    """Filter and order experiments as MLflow does: newest first by default, ids break ties."""
    clauses = parse_order_by(order_by, parse_identifier=parse_experiment_identifier)
    for clause in clauses:
        if clause.entity != "attribute":
            valid = sorted(EXPERIMENT_ATTRIBUTES)
            name = display_name(clause.entity, clause.key)
            raise InvalidInput(f"Cannot order by {name}. Valid keys are {valid}", field="order_by")
    if not clauses:
        clauses.append(OrderClause("attribute", "creation_time", True))
    if all(c.key != "experiment_id" for c in clauses):
        clauses.append(OrderClause("attribute", "experiment_id"))
    node = parse_filter(filter_string, transformer=_ExperimentAst)
    if node is not None:
        queryset = queryset.filter(compile_node(node, _compile_experiment_comparison))
    return sorted_result(queryset, clauses, _experiment_sort_expression)
