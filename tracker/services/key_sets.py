"""The per-experiment key sets (param, metric, tag and dataset names) the run table reads its
columns from, kept on every write path instead of found by a DISTINCT over the runs."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import connection

from tracker.models import ExperimentKey

_TABLE = ExperimentKey._meta.db_table


def record_keys(*, experiment_id: int, keys: Iterable[tuple[str, str]]) -> None:
    """Add (kind, key) pairs to the experiment's key set; known pairs cost nothing but the lookup.

    Called inside the writer's transaction and before its audit event. Rows go in sorted, so
    two batches adding the same new keys take the unique index's locks in one order and never
    deadlock; a known key is skipped by ON CONFLICT DO NOTHING without a row lock.
    """
    pairs = sorted(set(keys))
    if not pairs:
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
