"""Run search: MLflow's filter_string / order_by grammar compiled to ORM expressions.

The grammar is MLflow's (`<type>.<key> <comparator> <value>` joined by AND) plus OR, NOT and
parentheses. Every comparison compiles to a two-valued predicate (an `Exists` subquery, or a
column test guarded against NULL), so NOT is plain logical negation of the whole comparison:
`NOT params.x = 'a'` includes runs without param x, while `params.x != 'a'` (MLflow's rule) only
matches runs that have x. No SQL is ever built from strings; values only reach the database as
query parameters. Pagination is keyset-based over the sort columns plus the run uuid.
"""

from __future__ import annotations

import base64
import binascii
import json
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import reduce
from typing import Any

from django.db.models import (
    Case,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    FloatField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    When,
)
from django.db.models.functions import Cast
from lark import Lark, Token, Transformer, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken, VisitError

from config.exceptions import InvalidInput

from .models import DatasetInput, ExperimentTag, MetricSummary, Param, Run, Tag

GRAMMAR = r"""
?filter: disj
?disj: conj (_OR conj)*
?conj: neg (_AND neg)*
?neg: _NOT neg -> negation
    | atom
?atom: comparison
     | "(" disj ")"
comparison: IDENT (COMPARATOR value | LIKE value | IN values | IS)
?value: STRING | NUMBER
values: "(" value ("," value)* ")"
order: IDENT DIRECTION?

_AND.2: /and\b/i
_OR.2: /or\b/i
_NOT.2: /not\b/i
LIKE.2: /i?like\b/i
IN.2: /(not\s+)?in\b/i
IS.2: /is(\s+not)?\s+null\b/i
DIRECTION.2: /(asc|desc)\b/i
COMPARATOR: "!=" | ">=" | "<=" | "=" | ">" | "<"
IDENT: /[A-Za-z_]\w*(?:\.(?:`[^`]+`|"(?:[^"]|"")+"|[\w.\-\/]+))?/ | /`[^`]+`/
STRING: /'(?:[^']|'')*'/ | /"(?:[^"]|"")*"/
NUMBER: /[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?/
%ignore /\s+/
"""

_PARSER = Lark(GRAMMAR, parser="lalr", start=["filter", "order"])
MAX_DEPTH = 32  # NOT / AND / OR nesting; deeper trees would exhaust Python's or SQLite's stack
MAX_COMPARISONS = 100  # SQLite nests `a AND b AND ...` one level per term (limit 1000)

# Readable names for lark's terminals, in the order an error lists them.
_EXPECTED = {
    "_AND": "AND", "_OR": "OR", "RPAR": "')'", "COMMA": "','", "COMPARATOR": "a comparator (= != > >= < <=)",
    "LIKE": "LIKE/ILIKE", "IN": "IN/NOT IN", "IS": "IS NULL/IS NOT NULL", "_NOT": "NOT",
    "IDENT": "an identifier", "LPAR": "'('", "STRING": "a quoted string", "NUMBER": "a number",
    "DIRECTION": "ASC or DESC", "$END": "end of input",
}  # fmt: skip

ENTITY_PREFIXES = {
    "metric": "metric", "metrics": "metric", "param": "param", "params": "param", "parameter": "param",
    "parameters": "param", "tag": "tag", "tags": "tag", "attribute": "attribute",
    "attributes": "attribute", "attr": "attribute", "run": "attribute", "dataset": "dataset",
    "datasets": "dataset",
}  # fmt: skip
_DISPLAY_PREFIX = {entity: f"{entity}s" for entity in ("metric", "param", "tag", "attribute", "dataset")}
ATTRIBUTE_ALIASES = {"Run name": "run_name", "created": "start_time"}
STRING_ATTRIBUTES = {
    "run_id": "uuid", "run_name": "name", "status": "status", "user_id": "user__username",
    "artifact_uri": "artifact_uri", "lifecycle": "lifecycle",
}  # fmt: skip
TIME_ATTRIBUTES = ("start_time", "end_time")
SORT_ONLY_ATTRIBUTE = "duration"  # end_time - start_time; the run table sorts by it
_NULLABLE_ATTRIBUTES = {"user_id": "user", "end_time": "end_time"}  # guarded so NOT stays two-valued
DATASET_FIELDS = ["name", "digest", "context", "version"]
# Experiments are searched with the same grammar over their own identifiers (MLflow's
# search_experiments): attributes name, experiment_id and two times, and tags.
EXPERIMENT_PREFIXES = {
    "attribute": "attribute", "attributes": "attribute", "attr": "attribute", "tag": "tag", "tags": "tag",
}  # fmt: skip
EXPERIMENT_ATTRIBUTES = {
    "name": "name", "experiment_id": "pk", "creation_time": "created_at", "last_update_time": "updated_at",
}  # fmt: skip
EXPERIMENT_TIME_ATTRIBUTES = ("creation_time", "last_update_time")

_NUMERIC_OPS = {"=": "exact", ">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}
_STRING_OPS = ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN")
_NULL_OPS = ("IS NULL", "IS NOT NULL")
_ORDER_OPS = (">", ">=", "<", "<=")
_ALLOWED_OPS = {
    "number": ("=", "!=", *_ORDER_OPS, *_NULL_OPS),  # metrics, start_time, end_time
    "param": ("=", "!=", *_ORDER_OPS, "LIKE", "ILIKE", "IN", "NOT IN", *_NULL_OPS),
    "string": (*_STRING_OPS, *_NULL_OPS),  # tags and string attributes
    "dataset": _STRING_OPS,
}
# A number the database can cast without erroring: PostgreSQL rejects '1e999' and 'abc', so the
# CASE only casts values that match (both Python's re and PostgreSQL's ARE accept this pattern).
_NUMERIC_PATTERN = r"\A[-+]?(\d{1,30}(\.\d{0,30})?|\.\d{1,30})([eE][-+]?\d{1,2})?\Z"
_AS_NUMBER = Case(
    When(value__regex=_NUMERIC_PATTERN, then=Cast("value", FloatField())), output_field=FloatField()
)
_PLAIN_KEY = re.compile(r"[\w.\-/]+")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)


@dataclass(frozen=True)
class Comparison:
    entity: str  # metric | param | tag | attribute | dataset
    key: str  # canonical: attribute aliases resolved
    op: str  # = != > >= < <= LIKE ILIKE IN, NOT IN, IS NULL, IS NOT NULL
    value: str | int | float | tuple[str, ...] | None


@dataclass(frozen=True)
class BoolOp:
    op: str  # AND | OR | NOT (NOT has one item)
    items: tuple[Node, ...]


Node = Comparison | BoolOp


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


def display_name(entity: str, key: str) -> str:
    return f"{_DISPLAY_PREFIX[entity]}.{key if _PLAIN_KEY.fullmatch(key) else f'`{key}`'}"


def _split_identifier(text: str, field: str, prefixes: dict[str, str], valid: list[str]) -> tuple[str, str]:
    """`metrics."val loss"` → ("metric", "val loss"); a bare name is an attribute."""
    if text.startswith("`"):
        return "attribute", text[1:-1]
    if "." not in text:
        return "attribute", text
    prefix, key = text.split(".", 1)
    entity = prefixes.get(prefix.lower(), "")
    if not entity:
        raise InvalidInput(f"Invalid entity type '{prefix}'. Valid values are {valid}", field=field)
    if key[:1] in '`"' and len(key) > 1:
        key = key[1:-1].replace('""', '"') if key[0] == '"' else key[1:-1]
    return entity, key


def _parse_identifier(text: str, field: str) -> tuple[str, str]:
    valid = ["metric", "parameter", "tag", "attribute", "dataset"]
    entity, key = _split_identifier(text, field, ENTITY_PREFIXES, valid)
    if entity == "attribute":
        key = ATTRIBUTE_ALIASES.get(key, key)
        sort_only = (SORT_ONLY_ATTRIBUTE,) if field == "order_by" else ()
        if key not in STRING_ATTRIBUTES and key not in TIME_ATTRIBUTES and key not in sort_only:
            valid = sorted([*STRING_ATTRIBUTES, *TIME_ATTRIBUTES, *sort_only])
            raise InvalidInput(f"Invalid attribute key '{key}'. Valid values are {valid}", field=field)
    elif entity == "dataset" and key not in DATASET_FIELDS:
        raise InvalidInput(f"Invalid dataset key '{key}'. Valid values are {DATASET_FIELDS}", field=field)
    return entity, key


def _parse_experiment_identifier(text: str, field: str) -> tuple[str, str]:
    entity, key = _split_identifier(text, field, EXPERIMENT_PREFIXES, ["attribute", "tag"])
    if entity == "attribute" and key not in EXPERIMENT_ATTRIBUTES:
        valid = sorted(EXPERIMENT_ATTRIBUTES)
        raise InvalidInput(f"Invalid attribute key '{key}'. Valid values are {valid}", field=field)
    return entity, key


def _check(cmp: Comparison) -> Comparison:
    """Reject comparisons whose comparator or value type does not fit the identifier."""
    name = display_name(cmp.entity, cmp.key)
    times = (*TIME_ATTRIBUTES, *EXPERIMENT_TIME_ATTRIBUTES)  # each identifier parser admits its own
    numeric = cmp.entity == "metric" or (cmp.entity == "attribute" and cmp.key in times)
    kind = "number" if numeric else cmp.entity if cmp.entity in ("param", "dataset") else "string"
    if cmp.op not in _ALLOWED_OPS[kind]:
        allowed = ", ".join(_ALLOWED_OPS[kind])
        raise InvalidInput(
            f"Invalid comparator '{cmp.op}' for {name}. Valid comparators: {allowed}", field="filter"
        )
    # Params compare as numbers when the value is an unquoted number, and as strings otherwise.
    either = kind == "param" and cmp.op in ("=", "!=")
    needs_number = kind == "number" or (kind == "param" and cmp.op in _ORDER_OPS)
    for item in cmp.value if isinstance(cmp.value, tuple) else (cmp.value,):
        if needs_number and isinstance(item, str):
            raise InvalidInput(f"Expected numeric value type for {name}, got '{item}'", field="filter")
        if item is None or isinstance(item, str):
            continue
        if not needs_number and not either:
            raise InvalidInput(f"Expected a quoted string value for {name}, got {item}", field="filter")
        try:  # refuse here what float() or datetime arithmetic would choke on later
            float(item) if cmp.entity != "attribute" else _EPOCH + timedelta(milliseconds=int(item))
        except OverflowError:
            raise InvalidInput(f"Number out of range for {name}: {item}", field="filter") from None
    return cmp


class _ToAst(Transformer):
    parse_identifier = staticmethod(_parse_identifier)

    def STRING(self, token: Token) -> str:
        return token[1:-1].replace(token[0] * 2, token[0])

    def NUMBER(self, token: Token) -> int | float:
        return int(token) if token.lstrip("+-").isdigit() else float(token)

    def disj(self, items: list[Node]) -> BoolOp:
        return BoolOp("OR", tuple(items))

    def conj(self, items: list[Node]) -> BoolOp:
        return BoolOp("AND", tuple(items))

    def negation(self, items: list[Node]) -> BoolOp:
        return BoolOp("NOT", tuple(items))

    def values(self, items: list[str | float]) -> tuple:
        return tuple(items)

    def comparison(self, items: list) -> Comparison:
        ident, op, value = (*items, None) if len(items) == 2 else items
        entity, key = self.parse_identifier(str(ident), "filter")
        return _check(Comparison(entity, key, " ".join(op.upper().split()), value))


def _syntax_error(text: str, error: UnexpectedInput, field: str, prefix: str = "") -> InvalidInput:
    """Name the position (0-based, plus 1-based line/column) and what the parser wanted there."""
    expected: set[str]
    if isinstance(error, UnexpectedCharacters):
        pos, got = error.pos_in_stream or 0, repr(error.char)
        expected = set(error.allowed or ())
    elif isinstance(error, UnexpectedToken) and error.token.type != "$END":
        pos, got = error.token.start_pos or 0, repr(str(error.token))
        expected = error.accepts or error.expected
    else:  # the input ended early
        pos, got = len(text), "end of input"
        expected = set(getattr(error, "accepts", None) or getattr(error, "expected", None) or ())
    line = text.count("\n", 0, pos) + 1
    column = pos - (text.rfind("\n", 0, pos) + 1) + 1
    where = f"{prefix}Syntax error at position {pos} (line {line}, column {column})"
    if isinstance(error, UnexpectedCharacters) and error.char in ("'", '"'):
        return InvalidInput(f"{where}: unterminated string", field=field)
    names = [label for name, label in _EXPECTED.items() if name in expected]
    wanted = names[0] if len(names) == 1 else "one of " + ", ".join(names)
    return InvalidInput(f"{where}: expected {wanted}, got {got}", field=field)


def _parse(text: str, start: str, field: str, prefix: str = "") -> Tree:
    if "\x00" in text:  # PostgreSQL cannot store or compare text containing NUL
        raise InvalidInput(f"{prefix}NUL characters are not allowed", field=field)
    try:
        return _PARSER.parse(text, start=start)
    except UnexpectedInput as error:
        raise _syntax_error(text, error, field, prefix) from None


class _ExperimentAst(_ToAst):
    parse_identifier = staticmethod(_parse_experiment_identifier)


def parse_filter(text: str | None, *, transformer: type[_ToAst] = _ToAst) -> Node | None:
    """Parse and type-check a filter string; None when it is empty."""
    if not text or not text.strip():
        return None
    tree = _parse(text, "filter", "filter")
    # Measure the tree without recursion before the (recursive) transformer walks it.
    stack, comparisons = [(tree, 1)], 0
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise InvalidInput(f"Filter is nested more than {MAX_DEPTH} levels deep", field="filter")
        comparisons += node.data == "comparison"
        stack.extend((child, depth + 1) for child in node.children if isinstance(child, Tree))
    if comparisons > MAX_COMPARISONS:
        raise InvalidInput(f"Filter has more than {MAX_COMPARISONS} comparisons", field="filter")
    try:
        return transformer().transform(tree)
    except VisitError as error:
        raise error.orig_exc from None


def _like_regex(pattern: str) -> str:
    """SQL LIKE → a regex that Python's re (SQLite) and PostgreSQL's ARE read the same way."""
    body = "".join(
        ".*" if char == "%" else "." if char == "_" else "\\" + char if char in "\\^$.|?*+()[]{}" else char
        for char in pattern
    )
    return f"(?s)\\A{body}\\Z"  # (?s): '%' also spans newlines, as LIKE does


def _string_q(field: str, op: str, value: Any) -> Q:
    if op in ("LIKE", "ILIKE"):
        return Q(**{f"{field}__{'regex' if op == 'LIKE' else 'iregex'}": _like_regex(value)})
    q = Q(**{f"{field}__in" if op.endswith("IN") else field: value})
    return ~q if op in ("!=", "NOT IN") else q


def _number_q(field: str, op: str, value: float) -> Q:
    if op == "!=":  # spelled out: a NULL (NaN) never equals, and `~` would treat it specially
        return Q(**{f"{field}__lt": value}) | Q(**{f"{field}__gt": value})
    return Q(**{f"{field}__{_NUMERIC_OPS[op]}": value})


def _rows(entity: str, key: str) -> QuerySet:
    """The row holding the outer run's metric summary, param or tag for `key`."""
    if entity == "metric":
        return MetricSummary.objects.filter(run=OuterRef("pk"), key__name=key)
    return (Param if entity == "param" else Tag).objects.filter(run=OuterRef("pk"), key=key)


def _compile_comparison(cmp: Comparison) -> Q:
    op, value = cmp.op, cmp.value
    if cmp.entity == "attribute":
        return _compile_attribute(cmp)
    if cmp.entity == "dataset":
        rows = DatasetInput.objects.filter(run=OuterRef("pk"))
        return Q(Exists(rows.filter(_string_q(cmp.key, op, value))))
    rows = _rows(cmp.entity, cmp.key)
    if op in _NULL_OPS:  # IS NULL: the run never logged this key
        return ~Q(Exists(rows)) if op == "IS NULL" else Q(Exists(rows))
    if cmp.entity == "metric":
        cond = _number_q("last_value", op, float(value))  # type: ignore[arg-type]
        if op == "!=":  # NaN (stored as NULL) differs from every number, as in MLflow
            cond |= Q(last_value__isnull=True)
        return Q(Exists(rows.filter(cond)))
    if isinstance(value, int | float):  # unquoted number: only values that parse as numbers can match
        numeric = rows.annotate(number=_AS_NUMBER)
        return Q(Exists(numeric.filter(_number_q("number", op, float(value)))))
    return Q(Exists(rows.filter(_string_q("value", op, value))))


def _compile_attribute(cmp: Comparison) -> Q:
    op, value = cmp.op, cmp.value
    guard = _NULLABLE_ATTRIBUTES.get(cmp.key)
    if op in _NULL_OPS:
        return Q(**{f"{guard or cmp.key}__isnull": op == "IS NULL"})
    if cmp.key in TIME_ATTRIBUTES:
        cond = _time_q(cmp.key, op, value)  # type: ignore[arg-type]
    else:
        cond = _string_q(STRING_ATTRIBUTES[cmp.key], op, value)
    # The guard keeps the predicate two-valued on NULL, so NOT / OR over it stay plain logic.
    return Q(**{f"{guard}__isnull": False}) & cond if guard else cond


def _time_q(field: str, op: str, value: int) -> Q:
    """Compared at millisecond precision, as MLflow stores times: `= t` means t <= time < t + 1ms."""
    start = _EPOCH + timedelta(milliseconds=int(value))
    before, after = Q(**{f"{field}__lt": start}), Q(**{f"{field}__gte": start + _ONE_MS})
    conditions = {"=": ~before & ~after, "!=": before | after, ">": after, ">=": ~before, "<": before}
    return conditions.get(op, ~after)  # <=


def _compile_experiment_comparison(cmp: Comparison) -> Q:
    op, value = cmp.op, cmp.value
    if cmp.entity == "tag":
        rows = ExperimentTag.objects.filter(experiment=OuterRef("pk"), key=cmp.key)
        if op in _NULL_OPS:
            return ~Q(Exists(rows)) if op == "IS NULL" else Q(Exists(rows))
        return Q(Exists(rows.filter(_string_q("value", op, value))))
    field = EXPERIMENT_ATTRIBUTES[cmp.key]
    if op in _NULL_OPS:  # name, id and times are never NULL
        return Q(pk__in=[]) if op == "IS NULL" else Q()
    if cmp.key in EXPERIMENT_TIME_ATTRIBUTES:
        return _time_q(field, op, value)  # type: ignore[arg-type]
    if cmp.key == "experiment_id" and op not in ("LIKE", "ILIKE"):
        # Ids are strings on the wire and integers here: text that is no id matches no experiment.
        texts = value if isinstance(value, tuple) else (value,)
        ids = [int(text) for text in texts if isinstance(text, str) and text.isdigit() and len(text) < 19]
        return ~Q(pk__in=ids) if op in ("!=", "NOT IN") else Q(pk__in=ids)
    return _string_q(field, op, value)


def _compile_node(node: Node, compile_comparison: Callable[[Comparison], Q] = _compile_comparison) -> Q:
    if isinstance(node, Comparison):
        return compile_comparison(node)
    parts = [_compile_node(item, compile_comparison) for item in node.items]
    if node.op == "NOT":
        return ~parts[0]
    return reduce(operator.and_ if node.op == "AND" else operator.or_, parts)


def compile_filter(text: str | None) -> Q:
    """The filter string as a Q over Run; Q() when there is no filter."""
    node = parse_filter(text)
    return Q() if node is None else _compile_node(node)


IdentifierParser = Callable[[str, str], tuple[str, str]]  # (text, field) -> (entity, key)


def parse_order_by(
    items: Sequence[str] | None, *, parse_identifier: IdentifierParser = _parse_identifier
) -> list[OrderClause]:
    """Parse `"<identifier> [ASC|DESC]"` items; the same key twice is an error."""
    clauses: list[OrderClause] = []
    for index, item in enumerate(items or ()):
        tree = _parse(item, "order", "order_by", prefix=f"order_by[{index}] {item!r}: ")
        entity, key = parse_identifier(str(tree.children[0]), "order_by")
        if entity == "dataset":
            raise InvalidInput(f"Cannot order by {display_name(entity, key)}", field="order_by")
        if any((c.entity, c.key) == (entity, key) for c in clauses):
            raise InvalidInput(f"Duplicate order_by key: {display_name(entity, key)}", field="order_by")
        descending = len(tree.children) > 1 and str(tree.children[1]).upper() == "DESC"
        clauses.append(OrderClause(entity, key, descending))
    return clauses


def _sort_expression(clause: OrderClause) -> tuple[Any, str]:
    if clause.entity != "attribute":
        column = "last_value" if clause.entity == "metric" else "value"
        rows = _rows(clause.entity, clause.key).values(column)[:1]
        return Subquery(rows), "number" if clause.entity == "metric" else "string"
    if clause.key in TIME_ATTRIBUTES:
        return F(clause.key), "datetime"
    if clause.key == SORT_ONLY_ATTRIBUTE:
        return ExpressionWrapper(F("end_time") - F("start_time"), output_field=DurationField()), "duration"
    return F(STRING_ATTRIBUTES[clause.key]), "string"


def apply_search(
    queryset: QuerySet[Run], *, filter_string: str | None, order_by: Sequence[str] | None
) -> SearchResult:
    """Filter, annotate the sort values and order; start_time DESC, uuid break ties."""
    clauses = parse_order_by(order_by)
    for tie_breaker in (OrderClause("attribute", "start_time", True), OrderClause("attribute", "run_id")):
        if all((c.entity, c.key) != (tie_breaker.entity, tie_breaker.key) for c in clauses):
            clauses.append(tie_breaker)
    return _sorted(queryset.filter(compile_filter(filter_string)), clauses, _sort_expression)


def _sorted(
    queryset: QuerySet[Any],
    clauses: Sequence[OrderClause],
    sort_expression: Callable[[OrderClause], tuple[Any, str]],
) -> SearchResult:
    """Annotate each sort value and order by them, NULLs last either way."""
    annotations, columns, ordering = {}, [], []
    for index, clause in enumerate(clauses):
        name = f"search_sort_{index}"
        annotations[name], kind = sort_expression(clause)
        columns.append(SortColumn(name, clause.descending, kind))
        ordering.append(F(name).desc(nulls_last=True) if clause.descending else F(name).asc(nulls_last=True))
    return SearchResult(queryset.annotate(**annotations).order_by(*ordering), tuple(columns))


_EXPERIMENT_SORT_KINDS = {"name": "string", "experiment_id": "number"}


def _experiment_sort_expression(clause: OrderClause) -> tuple[Any, str]:
    return F(EXPERIMENT_ATTRIBUTES[clause.key]), _EXPERIMENT_SORT_KINDS.get(clause.key, "datetime")


def apply_experiment_search(
    queryset: QuerySet[Any], *, filter_string: str | None, order_by: Sequence[str] | None
) -> SearchResult:
    """Filter and order experiments as MLflow does: newest first by default, ids break ties."""
    clauses = parse_order_by(order_by, parse_identifier=_parse_experiment_identifier)
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
        queryset = queryset.filter(_compile_node(node, _compile_experiment_comparison))
    return _sorted(queryset, clauses, _experiment_sort_expression)


def _plain(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value // timedelta(microseconds=1)
    return value


def encode_cursor(values: Sequence[object]) -> str:
    plain = [_plain(value) for value in values]
    return base64.urlsafe_b64encode(json.dumps(plain, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(token: str) -> list:
    try:
        values = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError):
        values = None
    if not isinstance(values, list):
        raise InvalidInput("Invalid page token", field="page_token")
    return values


def _restore(kind: str, value: Any) -> Any:
    """A cursor value back in its column's type (its JSON type was checked by the caller)."""
    if value is None:
        return None
    if kind == "datetime":
        return datetime.fromisoformat(value)
    if kind == "duration":
        return timedelta(microseconds=value)
    return value


def _cursor_values(result: SearchResult, token: str) -> list:
    """Decode a cursor and restore each value's type, refusing one made for another sort."""
    raw = decode_cursor(token)
    types: dict[str, type | tuple[type, ...]] = {
        "number": (int, float),
        "string": str,
        "datetime": str,
        "duration": int,
    }
    valid = len(raw) == len(result.columns) and all(
        value is None
        or (
            isinstance(value, types[column.kind])
            and not isinstance(value, bool)
            and "\x00" not in str(value)  # PostgreSQL cannot compare text holding NUL
        )
        for column, value in zip(result.columns, raw, strict=False)
    )
    try:
        if valid:
            return [_restore(column.kind, value) for column, value in zip(result.columns, raw, strict=True)]
    except ValueError:
        pass
    raise InvalidInput("Invalid page token", field="page_token")


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


def page_after(result: SearchResult, *, cursor: str | None, limit: int) -> tuple[list[Any], str | None]:
    """One page of rows after the cursor, and the cursor for the next page (None at the end)."""
    if limit < 1:
        raise InvalidInput("Page size must be at least 1", field="max_results")
    queryset = result.queryset
    if cursor:
        queryset = queryset.filter(_after(result.columns, _cursor_values(result, cursor)))
    rows = list(queryset[: limit + 1])
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], encode_cursor([getattr(last, column.name) for column in result.columns])
