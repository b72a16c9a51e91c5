"""The search language itself: grammar, parser, syntax errors, the AST, the identifiers of runs
and experiments with their type rules, and the comparison builders every searched entity shares
(runs, experiments, logged models, and the registry's models and versions)."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import reduce
from typing import Any

from django.db.models import Q
from lark import Lark, Token, Transformer, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken, VisitError

from config.epoch import ONE_MS, from_ms
from config.exceptions import InvalidInput

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
NULL_OPS = ("IS NULL", "IS NOT NULL")
_ORDER_OPS = (">", ">=", "<", "<=")
_ALLOWED_OPS = {
    "number": ("=", "!=", *_ORDER_OPS, *NULL_OPS),  # metrics, start_time, end_time
    "param": ("=", "!=", *_ORDER_OPS, "LIKE", "ILIKE", "IN", "NOT IN", *NULL_OPS),
    "string": (*_STRING_OPS, *NULL_OPS),  # tags and string attributes
    "dataset": _STRING_OPS,
}
_PLAIN_KEY = re.compile(r"[\w.\-/]+")


class FilterSyntaxError(InvalidInput):
    """A filter the parser could not read; `position` (0-based) is where, for a caret under it."""

    def __init__(self, message: str, *, field: str | None = None, text: str = "", position: int = 0) -> None:
        super().__init__(message, field=field)
        self.text = text
        self.position = position


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


def display_name(entity: str, key: str) -> str:
    """How an error names an identifier: `params.lr`, with back-quotes round a key that needs them."""
    return f"{_DISPLAY_PREFIX[entity]}.{key if _PLAIN_KEY.fullmatch(key) else f'`{key}`'}"


def split_identifier(text: str, field: str, prefixes: dict[str, str], valid: list[str]) -> tuple[str, str]:
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


def parse_run_identifier(text: str, field: str) -> tuple[str, str]:
    """A run identifier as (entity, key), refusing attributes and dataset fields runs do not have."""
    valid = ["metric", "parameter", "tag", "attribute", "dataset"]
    entity, key = split_identifier(text, field, ENTITY_PREFIXES, valid)
    if entity == "attribute":
        key = ATTRIBUTE_ALIASES.get(key, key)
        sort_only = (SORT_ONLY_ATTRIBUTE,) if field == "order_by" else ()
        if key not in STRING_ATTRIBUTES and key not in TIME_ATTRIBUTES and key not in sort_only:
            valid = sorted([*STRING_ATTRIBUTES, *TIME_ATTRIBUTES, *sort_only])
            raise InvalidInput(f"Invalid attribute key '{key}'. Valid values are {valid}", field=field)
    elif entity == "dataset" and key not in DATASET_FIELDS:
        raise InvalidInput(f"Invalid dataset key '{key}'. Valid values are {DATASET_FIELDS}", field=field)
    return entity, key


def parse_experiment_identifier(text: str, field: str) -> tuple[str, str]:
    """An experiment identifier as (entity, key): one of its attributes, or a tag."""
    entity, key = split_identifier(text, field, EXPERIMENT_PREFIXES, ["attribute", "tag"])
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
            float(item) if cmp.entity != "attribute" else from_ms(int(item))
        except OverflowError:
            raise InvalidInput(f"Number out of range for {name}: {item}", field="filter") from None
    return cmp


class ToAst(Transformer):
    """Parse tree → Comparison/BoolOp nodes for run identifiers; subclasses search other entities."""

    parse_identifier = staticmethod(parse_run_identifier)

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


def _syntax_error(text: str, error: UnexpectedInput, field: str, prefix: str = "") -> FilterSyntaxError:
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
        return FilterSyntaxError(f"{where}: unterminated string", field=field, text=text, position=pos)
    names = [label for name, label in _EXPECTED.items() if name in expected]
    wanted = names[0] if len(names) == 1 else "one of " + ", ".join(names)
    return FilterSyntaxError(f"{where}: expected {wanted}, got {got}", field=field, text=text, position=pos)


def parse_tree(text: str, start: str, field: str, prefix: str = "") -> Tree:
    """Parse `text` from the grammar rule `start`; a syntax error names its position."""
    if "\x00" in text:  # PostgreSQL cannot store or compare text containing NUL
        raise InvalidInput(f"{prefix}NUL characters are not allowed", field=field)
    try:
        return _PARSER.parse(text, start=start)
    except UnexpectedInput as error:
        raise _syntax_error(text, error, field, prefix) from None


def parse_filter(text: str | None, *, transformer: type[ToAst] = ToAst) -> Node | None:
    """Parse and type-check a filter string; None when it is empty."""
    if not text or not text.strip():
        return None
    tree = parse_tree(text, "filter", "filter")
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


def comparisons_of(node: Node | None) -> list[Comparison]:
    """Every comparison in a parsed filter, in reading order."""
    found: list[Comparison] = []
    stack: list[Node] = [node] if node is not None else []
    while stack:
        item = stack.pop()
        if isinstance(item, Comparison):
            found.append(item)
        else:
            stack.extend(reversed(item.items))
    return found


def _like_regex(pattern: str) -> str:
    """SQL LIKE → a regex that Python's re (SQLite) and PostgreSQL's ARE read the same way."""
    body = "".join(
        ".*" if char == "%" else "." if char == "_" else "\\" + char if char in "\\^$.|?*+()[]{}" else char
        for char in pattern
    )
    return f"(?s)\\A{body}\\Z"  # (?s): '%' also spans newlines, as LIKE does


def string_q(field: str, op: str, value: Any) -> Q:
    """A string comparison (= != LIKE ILIKE IN NOT IN) on `field`, LIKE read the same on every database."""
    if op in ("LIKE", "ILIKE"):
        return Q(**{f"{field}__{'regex' if op == 'LIKE' else 'iregex'}": _like_regex(value)})
    q = Q(**{f"{field}__in" if op.endswith("IN") else field: value})
    return ~q if op in ("!=", "NOT IN") else q


def number_q(field: str, op: str, value: float) -> Q:
    """A number comparison (= != > >= < <=) on `field`; `!=` never matches NULL."""
    if op == "!=":  # spelled out: a NULL (NaN) never equals, and `~` would treat it specially
        return Q(**{f"{field}__lt": value}) | Q(**{f"{field}__gt": value})
    return Q(**{f"{field}__{_NUMERIC_OPS[op]}": value})


def time_q(field: str, op: str, value: int) -> Q:
    """Compared at millisecond precision, as MLflow stores times: `= t` means t <= time < t + 1ms."""
    start = from_ms(int(value))
    before, after = Q(**{f"{field}__lt": start}), Q(**{f"{field}__gte": start + ONE_MS})
    conditions = {"=": ~before & ~after, "!=": before | after, ">": after, ">=": ~before, "<": before}
    return conditions.get(op, ~after)  # <=


def compile_node(node: Node, compile_comparison: Callable[[Comparison], Q]) -> Q:
    """A filter's AST as one Q: each comparison compiled by the searched entity's own function."""
    if isinstance(node, Comparison):
        return compile_comparison(node)
    parts = [compile_node(item, compile_comparison) for item in node.items]
    if node.op == "NOT":
        return ~parts[0]
    return reduce(operator.and_ if node.op == "AND" else operator.or_, parts)
