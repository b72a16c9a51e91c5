"""Run search: MLflow's filter_string / order_by grammar compiled to ORM expressions.

The grammar is MLflow's (`<type>.<key> <comparator> <value>` joined by AND) plus OR, NOT and
parentheses. Every comparison compiles to a two-valued predicate (an `Exists` subquery, or a
column test guarded against NULL), so NOT is plain logical negation of the whole comparison:
`NOT params.x = 'a'` includes runs without param x, while `params.x != 'a'` (MLflow's rule) only
matches runs that have x. No SQL is ever built from strings; values only reach the database as
query parameters. Pagination is keyset-based over the sort columns plus the run uuid.

grammar.py holds the language (parser, AST, identifiers, shared comparison builders), runs.py and
experiments.py compile it for their entity, paging.py orders and pages the result, and
logged_models.py searches MLflow 3's logged models with the same grammar.
"""

from .experiments import apply_experiment_search
from .grammar import (
    BoolOp,
    Comparison,
    FilterSyntaxError,
    Node,
    ToAst,
    comparisons_of,
    compile_node,
    display_name,
    parse_filter,
    string_q,
)
from .paging import (
    OrderClause,
    SearchResult,
    cursor_int,
    cursor_number,
    decode_cursor,
    decode_offset,
    encode_cursor,
    invalid_token,
    page_after,
    parse_order_by,
)
from .runs import apply_search, compile_filter

__all__ = [
    "BoolOp",
    "Comparison",
    "FilterSyntaxError",
    "Node",
    "OrderClause",
    "SearchResult",
    "ToAst",
    "apply_experiment_search",
    "apply_search",
    "comparisons_of",
    "compile_filter",
    "compile_node",
    "cursor_int",
    "cursor_number",
    "decode_cursor",
    "decode_offset",
    "display_name",
    "encode_cursor",
    "invalid_token",
    "page_after",
    "parse_filter",
    "parse_order_by",
    "string_q",
]
