"""A cursor for the few hot statements that PostgreSQL should plan once per connection."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from functools import lru_cache
from typing import Any

from django.db import connection


def prepared_cursor(*, numbered: bool = False) -> Any:
    """Django's cursor, with server-side binding on PostgreSQL.

    Django's own cursors bind parameters on the client, so PostgreSQL parses and plans every
    statement again; the single-point statement took 0.8 ms to plan and under 1 ms to run. With
    server-side binding psycopg prepares a statement the fifth time a connection runs it
    (`prepare_threshold`), and connections live for CONN_MAX_AGE. It is still Django's wrapper,
    so DEBUG logs and tests' query counts see what it runs. Use it for fixed SQL only, with
    explicit column lists (a prepared `SELECT *` breaks when a migration adds a column), and only
    where no plan can go wrong as a table grows (a lookup by a unique key, an insert, an upsert):
    PostgreSQL may keep the plan it chose at the fifth use for the connection's life. A
    transaction-pooling proxy in front of PostgreSQL (PgBouncer before 1.21) would hand a
    prepared statement's name to another server connection: there is none in this deployment.
    `numbered`: the SQL already uses PostgreSQL's own `$1` placeholders (see `numbered_sql`).
    """
    if connection.vendor != "postgresql":
        return connection.cursor()
    import psycopg

    connection.close_if_health_check_failed()  # what connection.cursor() does before it
    connection.ensure_connection()
    connection.validate_thread_sharing()
    cursor_class = psycopg.RawCursor if numbered else psycopg.Cursor
    raw: Any = cursor_class(connection.connection)  # binds parameters on the server
    if connection.queries_logged:
        return connection.make_debug_cursor(raw)
    return connection.make_cursor(raw)


def pipelined() -> AbstractContextManager[Any]:
    """Statements run inside go to PostgreSQL together and are answered together: one round trip
    for writes whose results nobody reads (summary, rollup and key-set merges). Errors surface
    at the end of the block, still inside the caller's transaction. Elsewhere it does nothing."""
    if connection.vendor != "postgresql":
        return nullcontext()
    connection.ensure_connection()
    return connection.connection.pipeline()


def fetch_together(statements: Sequence[tuple[str, Sequence[Any]]]) -> list[list[tuple[Any, ...]]]:
    """Every row of several reads, in order. On PostgreSQL they travel in one pipeline, so a
    page's params, tags and metrics cost one round trip rather than one each; elsewhere they run
    one after another.

    They are not prepared: each is planned for the values it is sent with and the tables as they
    are now. A plan prepared while a table was small (a new install's first runs) stays with the
    connection, and a sequential scan chosen then is paid on every read once the table is large:
    the run search's param read took 18 ms instead of 0.3 on 20,000 params that way.
    """
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            results = []
            for sql, params in statements:
                cursor.execute(sql, params)
                results.append(cursor.fetchall())
            return results
    cursors = [connection.cursor() for _ in statements]
    try:
        with connection.wrap_database_errors, pipelined():
            for cursor, (sql, params) in zip(cursors, statements, strict=True):
                cursor.execute(sql, params)
        return [cursor.fetchall() for cursor in cursors]
    finally:
        for cursor in cursors:
            cursor.close()


def for_each_id(select: str, *, column: str, ids: Sequence[int]) -> tuple[str, list[Any]]:
    """`select` (a SELECT whose WHERE holds `{ids}`) for each of these integer ids, as SQL and its
    parameters. On PostgreSQL the ids arrive as one array and each is read by its own LATERAL
    subquery, which the planner may not flatten (OFFSET 0): an index lookup per id whatever the
    statistics say. `column = ANY(array)` let the planner pick a sequential scan when the table
    looked small or had never been analyzed, comparing every row with every id. Elsewhere it is
    `column IN (…)`."""
    if connection.vendor == "postgresql":
        inner = select.replace("{ids}", f"{column} = ids.id")
        sql = f"SELECT found.* FROM unnest(%s::bigint[]) AS ids(id), LATERAL ({inner} OFFSET 0) AS found"
        return sql, [list(ids)]
    return select.replace("{ids}", f"{column} IN ({', '.join(['%s'] * len(ids))})"), list(ids)


@lru_cache(maxsize=32)
def numbered_sql(statement: str) -> tuple[str, tuple[str, ...]]:
    """`%(name)s` placeholders as PostgreSQL's `$1`, `$2`…, and the names in that order.

    psycopg rewrites placeholders on every call and caches the result only for statements up to
    4 kB; a longer fixed statement, rewritten once here, spares each call that scan (0.1 ms).
    """
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match[1] not in names:
            names.append(match[1])
        return f"${names.index(match[1]) + 1}"

    return re.sub(r"%\((\w+)\)s", number, statement), tuple(names)


def execute_committed(statement: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
    """Run one statement as a transaction of its own and return its first row: in autocommit
    mode a statement is one, so no `BEGIN` and `COMMIT` travel with it and psycopg waits once.
    Inside a caller's transaction (`transaction.atomic`, as tests run) it simply joins it.

    A single write that is a whole transaction (one metric point with its audit event, a model
    version with its event) is written as one statement of data-modifying CTEs for this: one
    round trip, where a statement each and the `COMMIT` would each pay one. PostgreSQL only,
    fixed SQL with named parameters only (prepared, as with `prepared_cursor`).
    """
    sql, names = numbered_sql(statement)
    with prepared_cursor(numbered=True) as cursor:
        cursor.execute(sql, [params[name] for name in names])
        return cursor.fetchone()


def array_literal(values: Iterable[Any]) -> str:
    """PostgreSQL's text form of a one-dimensional array of numbers, booleans and None, to be cast
    in SQL (`%s::bigint[]`). psycopg adapts a Python list element by element; a thousand-point
    batch sends its rollups as fifteen arrays of hundreds of values, and this is about four
    times cheaper. Floats print as Python's shortest round-trip form (nan and inf included),
    which PostgreSQL reads back exactly."""
    return "{" + ",".join("NULL" if value is None else str(value) for value in values) + "}"


def column_arrays(rows: Iterable[Sequence[Any]]) -> list[str]:
    """Each column of these rows as an `array_literal`: rows sent as one array per column, which a
    statement turns back into rows with `unnest`, so its text is the same whatever their number."""
    return [array_literal(column) for column in zip(*rows, strict=True)]
