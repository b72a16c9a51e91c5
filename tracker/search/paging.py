"""order_by and keyset paging, shared by the run and experiment searches: parse the order items,
sort by annotated values (NULLs last), and page after an opaque cursor of the last row's values."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import F, FloatField, Q, QuerySet, Value

from config.exceptions import InvalidInput

from .grammar import display_name, parse_run_identifier, parse_tree


@dataclass(frozen=True)
class OrderClause:
    entity: str
    key: str
    descending: bool = False


@dataclass(frozen=True)
class SortColumn:  # an annotation the result is ordered by
    name: str
    descending: bool
    kind: str  # number | string | datetime | duration: tells cursors how to round-trip values


@dataclass(frozen=True)
class SearchResult:
    queryset: QuerySet[Any]  # runs, or experiments
    columns: tuple[SortColumn, ...]  # always ends in a unique id, so the order is total
    # When the first sort column is a metric: the same rows in two parts, those with a value
    # (ordered by the summary index, so a page reads only its own rows) and those without
    # (NULLs last). page_after reads them one after the other.
    split: tuple[QuerySet[Any], QuerySet[Any]] | None = None
    # When the first two sort columns are a value's indexed prefix (this many characters) and
    # the whole value (a param or tag sort), the first part is read a value at a time
    # (see _grouped_rows).
    value_prefix_length: int | None = None
    # The sort a page token was made for (see sort_signature): a token of another sort is
    # refused, even when its values would fit these columns.
    signature: str = ""


IdentifierParser = Callable[[str, str], tuple[str, str]]  # (text, field) -> (entity, key)


def parse_order_by(
    items: Sequence[str] | None, *, parse_identifier: IdentifierParser = parse_run_identifier
) -> list[OrderClause]:
    """Parse `"<identifier> [ASC|DESC]"` items; the same key twice is an error."""
    clauses: list[OrderClause] = []
    for index, item in enumerate(items or ()):
        tree = parse_tree(item, "order", "order_by", prefix=f"order_by[{index}] {item!r}: ")
        entity, key = parse_identifier(str(tree.children[0]), "order_by")
        if entity == "dataset":
            raise InvalidInput(f"Cannot order by {display_name(entity, key)}", field="order_by")
        if any((c.entity, c.key) == (entity, key) for c in clauses):
            raise InvalidInput(f"Duplicate order_by key: {display_name(entity, key)}", field="order_by")
        descending = len(tree.children) > 1 and str(tree.children[1]).upper() == "DESC"
        clauses.append(OrderClause(entity, key, descending))
    return clauses


def sorted_result(
    queryset: QuerySet[Any],
    clauses: Sequence[OrderClause],
    sort_expression: Callable[[OrderClause], tuple[Any, str]],
    *,
    not_null: Callable[[OrderClause], bool] = lambda clause: False,
) -> SearchResult:
    """Annotate each sort value and order by them, NULLs last either way.

    A column that is never NULL is ordered without NULLS LAST, so that an index in its plain
    order (a descending b-tree puts NULLs first) can serve the sort.
    """
    annotations, columns, ordering = {}, [], []
    for index, clause in enumerate(clauses):
        name = f"search_sort_{index}"
        annotations[name], kind = sort_expression(clause)
        columns.append(SortColumn(name, clause.descending, kind))
        ordering.append(_ordering(name, clause.descending, nulls_last=not not_null(clause)))
    return SearchResult(
        queryset.annotate(**annotations).order_by(*ordering),
        tuple(columns),
        signature=sort_signature(clauses),
    )


def sort_signature(clauses: Sequence[OrderClause]) -> str:
    """A short fingerprint of a sort, written into its page tokens: a cursor of `metrics.a`
    read against `metrics.b` would give pages that silently skip runs."""
    sort = json.dumps([[clause.entity, clause.key, clause.descending] for clause in clauses])
    return hashlib.blake2b(sort.encode(), digest_size=6).hexdigest()


def _ordering(name: str, descending: bool, *, nulls_last: bool = True) -> Any:
    if not nulls_last:
        return F(name).desc() if descending else F(name).asc()
    return F(name).desc(nulls_last=True) if descending else F(name).asc(nulls_last=True)


def split_result(
    queryset: QuerySet[Any],
    clauses: Sequence[OrderClause],
    sort_expression: Callable[[OrderClause], tuple[Any, str]],
    *,
    not_null: Callable[[OrderClause], bool],
    with_value: QuerySet[Any],
    value: Any,
    without_value: QuerySet[Any],
    value_prefix_length: int | None = None,
) -> SearchResult:
    """`queryset` sorted by `clauses`, read in two parts: the rows where the first sort value
    exists (`value` over `with_value`), ordered by it without NULLS LAST so that an index can
    serve the order; then the rest (`without_value`), where it is NULL."""
    result = sorted_result(queryset, clauses, sort_expression, not_null=not_null)
    first, rest = result.columns[0], result.columns[1:]
    later = {
        column.name: sort_expression(clause)[0] for column, clause in zip(rest, clauses[1:], strict=True)
    }
    order = [
        _ordering(column.name, column.descending, nulls_last=not not_null(clause))
        for column, clause in zip(rest, clauses[1:], strict=True)
    ]
    having = with_value.annotate(**{first.name: value}, **later)
    having = having.order_by(_ordering(first.name, first.descending, nulls_last=False), *order)
    missing = without_value.annotate(**{first.name: Value(None, output_field=FloatField())}, **later)
    return SearchResult(
        result.queryset,
        result.columns,
        split=(having, missing.order_by(*order)),
        value_prefix_length=value_prefix_length,
        signature=result.signature,
    )


def _plain(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value // timedelta(microseconds=1)
    return value


def encode_cursor(values: Sequence[object]) -> str:
    """A page token holding `values` (JSON, base64url without padding)."""
    plain = [_plain(value) for value in values]
    return base64.urlsafe_b64encode(json.dumps(plain, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(token: str) -> list:
    """The values of a page token; anything else is an error naming page_token."""
    try:
        values = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError, RecursionError):
        values = None
    if not isinstance(values, list):
        raise invalid_token()
    return values


def invalid_token() -> InvalidInput:
    return InvalidInput("Invalid page token", field="page_token")


# Every integer a cursor holds comes from a 64-bit column (ids, steps, times, durations in
# microseconds); anything wider was made by hand, and would overflow SQL or Python's datetime.
_INT64 = range(-(2**63), 2**63)


def cursor_int(value: Any) -> int:
    """A cursor's integer, refused when it is not one or out of the 64-bit range."""
    if type(value) is not int or value not in _INT64:
        raise invalid_token()
    return value


def cursor_number(value: Any) -> float | int:
    """A cursor's number: a float (±Infinity included: metric values may be infinite) or a
    64-bit integer."""
    if type(value) is float:
        return value
    return cursor_int(value)


def _restore(kind: str, value: Any) -> Any:
    """A cursor value back in its column's type, or an error naming page_token."""
    if value is None:
        return None
    if kind == "number":
        return cursor_number(value)
    if kind == "duration":
        try:
            return timedelta(microseconds=cursor_int(value))
        except OverflowError:  # more than 999,999,999 days
            raise invalid_token() from None
    if not isinstance(value, str) or "\x00" in value:  # PostgreSQL cannot compare text holding NUL
        raise invalid_token()
    if kind == "datetime":
        # Cursors hold UTC times; a far offset could move the value outside what Python and
        # PostgreSQL represent (9999-12-31T23:59:59-23:59), so it is read back in UTC.
        try:
            moment = datetime.fromisoformat(value)
            if moment.tzinfo is None:
                raise ValueError("a cursor time has an offset")
            return moment.astimezone(UTC)
        except (ValueError, OverflowError):
            raise invalid_token() from None
    return value


def _cursor_values(result: SearchResult, token: str) -> list:
    """Decode a cursor (the sort's signature, then a value per column) and restore each value's
    type, refusing one made for another sort."""
    raw = decode_cursor(token)
    if len(raw) != len(result.columns) + 1 or raw[0] != result.signature:
        raise invalid_token()
    return [_restore(column.kind, value) for column, value in zip(result.columns, raw[1:], strict=True)]


def decode_offset(token: str, *, limit: int = 2**53) -> int:
    """The offset an offset-numbered page token holds (0 without one)."""
    if not token:
        return 0
    values = decode_cursor(token)
    if len(values) != 1 or type(values[0]) is not int or not 0 <= values[0] < limit:
        raise invalid_token()
    return values[0]


def _after(columns: Sequence[SortColumn], values: Sequence[object]) -> Q:
    """Rows strictly after `values` in the sort order, where NULLs come last either way."""
    condition, equal_so_far = Q(pk__in=[]), Q()
    for column, value in zip(columns, values, strict=True):
        if value is not None:  # a NULL cursor value has nothing after it in its own column
            beyond = Q(**{f"{column.name}__{'lt' if column.descending else 'gt'}": value})
            condition |= equal_so_far & (beyond | Q(**{f"{column.name}__isnull": True}))
            equal_so_far &= Q(**{column.name: value})
        else:
            equal_so_far &= Q(**{f"{column.name}__isnull": True})
    return condition


def _split_rows(result: SearchResult, values: list | None, limit: int) -> list[Any]:
    """Up to `limit` rows after the cursor `values` from the two parts of a split result."""
    assert result.split is not None
    with_value, without_value = result.split
    first, rest = result.columns[0], result.columns[1:]
    rows: list[Any] = []
    if values is None or values[0] is not None:
        if values is not None:
            # The plain bound lets the index scan start at the cursor; _after's OR cannot.
            bound = Q(**{f"{first.name}__{'lte' if first.descending else 'gte'}": values[0]})
            with_value = with_value.filter(bound, _after(result.columns, values))
        if result.value_prefix_length:
            rows = _grouped_rows(with_value, result.columns, limit, prefix_length=result.value_prefix_length)
        else:
            rows = list(with_value[:limit])
        if len(rows) == limit:
            return rows
        values = None  # the rows without a value all come after these
    if values is not None:
        without_value = without_value.filter(_after(rest, values[1:]))
    return rows + list(without_value[: limit - len(rows)])


# Values read group by group before the rest is read in one query (see _grouped_rows).
GROUPS_READ_ALONE = 2


def _grouped_rows(
    with_value: QuerySet[Any], columns: Sequence[SortColumn], limit: int, *, prefix_length: int
) -> list[Any]:
    """Up to `limit` rows sorted by a value (its prefix, then itself, then the rest), read one
    value at a time: the next value comes from the (key, prefix, run) index, and its runs in
    the order of the remaining columns, which PostgreSQL reads from the run's own index and
    stops after `limit`. A sweep's param has a few values, each held by thousands of runs; in
    one query the whole first group was joined and sorted before the LIMIT (100 ms at 100,000
    runs, against 10 ms this way). After GROUPS_READ_ALONE small groups the rest is one query."""
    prefix, value = columns[0], columns[1]
    direction = "lt" if prefix.descending else "gt"
    rows: list[Any] = []
    for _ in range(GROUPS_READ_ALONE):
        ordered = with_value.order_by(F(prefix.name).desc() if prefix.descending else F(prefix.name).asc())
        found = list(ordered.values_list(prefix.name, flat=True)[:1])
        if not found or len(found[0]) >= prefix_length:
            break  # no rows left, or values longer than the prefix: their order needs a sort
        # A prefix shorter than prefix_length is the whole value, so the group's order is the
        # remaining columns' order, and the planner sees both sort values as constants.
        group = with_value.filter(**{prefix.name: found[0], value.name: found[0]})
        rows += list(group[: limit - len(rows)])
        if len(rows) == limit:
            return rows
        with_value = with_value.filter(**{f"{prefix.name}__{direction}": found[0]})
    return rows + list(with_value[: limit - len(rows)])


def page_after(result: SearchResult, *, cursor: str | None, limit: int) -> tuple[list[Any], str | None]:
    """One page of rows after the cursor, and the cursor for the next page (None at the end)."""
    if limit < 1:
        raise InvalidInput("Page size must be at least 1", field="max_results")
    values = _cursor_values(result, cursor) if cursor else None
    if result.split is not None:
        rows = _split_rows(result, values, limit + 1)
    else:
        queryset = (
            result.queryset if values is None else result.queryset.filter(_after(result.columns, values))
        )
        rows = list(queryset[: limit + 1])
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], encode_cursor(
        [result.signature, *(getattr(last, column.name) for column in result.columns)]
    )
