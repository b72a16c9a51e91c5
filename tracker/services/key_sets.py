"""The per-experiment key sets (param, metric, tag and dataset names) the run table reads its
columns from, kept on every write path instead of found by a DISTINCT over the runs."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import connection

from config.db import prepared_cursor
from tracker.models import ExperimentKey, MetricKey, Run

_TABLE = ExperimentKey._meta.db_table
# `unnest` keeps the arrays' (sorted) order, the order the rows take the unique index's locks in.
_INSERT_FROM_ARRAYS = (
    f"INSERT INTO {_TABLE} (experiment_id, kind, key) "
    "SELECT %s, pair.kind, pair.key FROM unnest(%s::text[], %s::text[]) AS pair (kind, key) "
    "ON CONFLICT DO NOTHING"
)


def record_keys(*, experiment_id: int, keys: Iterable[tuple[str, str]]) -> None:
    """Add (kind, key) pairs to the experiment's key set; known pairs cost nothing but the lookup.

    Called inside the writer's transaction and before its audit event. Rows go in sorted, so
    two batches adding the same new keys take the unique index's locks in one order and never
    deadlock; a known key is skipped by ON CONFLICT DO NOTHING without a row lock.
    """
    pairs = sorted(set(keys))
    if not pairs:
        return
    if connection.vendor == "postgresql":
        # Two arrays, so the text is the same for any number of keys and is prepared: a batch of
        # a hundred metric names, sent as placeholders, cost 0.8 ms more CPU (bench/README.md).
        kinds, names = zip(*pairs, strict=True)
        with prepared_cursor() as cursor:
            cursor.execute(_INSERT_FROM_ARRAYS, [experiment_id, list(kinds), list(names)])
        return
    placeholders = ",".join(["(%s,%s,%s)"] * len(pairs))
    params: list[Any] = []
    for kind, key in pairs:
        params.extend((experiment_id, kind, key))
    with connection.cursor() as cursor:  # plain SQL: every metric batch passes here
        cursor.execute(
            f"INSERT INTO {_TABLE} (experiment_id, kind, key) VALUES {placeholders} ON CONFLICT DO NOTHING",
            params,
        )


def record_metric_keys_of(*, pairs_sql: str) -> None:
    """Add the metric names of the (run_id, key_id) pairs `pairs_sql` selects to their runs'
    experiments' key sets, in SQL: for writers whose points sit in a table (bulk uploads)."""
    runs, metric_keys = Run._meta.db_table, MetricKey._meta.db_table
    with connection.cursor() as cursor:
        # Sorted, as record_keys inserts, so concurrent writers take the unique index in one order;
        # `WHERE true` lets SQLite tell the ON CONFLICT from a join's ON.
        cursor.execute(
            f"INSERT INTO {_TABLE} (experiment_id, kind, key) "
            f"SELECT DISTINCT r.experiment_id, 'metric', k.name FROM ({pairs_sql}) AS pairs "
            f"JOIN {runs} AS r ON r.id = pairs.run_id JOIN {metric_keys} AS k ON k.id = pairs.key_id "
            "WHERE true ORDER BY 1, 2, 3 ON CONFLICT DO NOTHING"
        )
