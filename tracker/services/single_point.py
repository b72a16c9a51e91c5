"""One metric point in one SQL statement: the `log_metric` hot path on PostgreSQL.

A training script's `log_metric` calls cost the server round trips, not work: the general path
asks for the key's id, inserts the point, merges the summary, the rollups and the experiment's
key set, a statement each. Here one statement does all five with data-modifying CTEs, sent in
one pipeline with the transaction's BEGIN, so the point costs one round trip before the audit
event. The rules are the general path's own: the summary and rollup upserts are the same SQL,
their rows come from the same Python functions, and the key set gets the name whether or not
the point was new (a retried point inserts nothing, like the general path).
"""

from __future__ import annotations

from config.db import prepared_cursor
from tracker.models import ExperimentKey, MetricKey, MetricPoint

from .metric_store import summary_merge_sql
from .rollups import rollup_merge_sql, rollup_rows

_KEYS = MetricKey._meta.db_table
_POINTS = MetricPoint._meta.db_table
_KEY_SETS = ExperimentKey._meta.db_table
# Rollup columns after (run_id, key_id), as rollups.rollup_rows yields them after key_id.
_ROLLUP_TYPES = (
    "smallint", "bigint", "bigint", "float8", "bigint", "bigint", "float8", "bigint",
    "bigint", "bigint", "bigint", "float8", "boolean",
)  # fmt: skip
_ROLLUP_ARRAYS = ", ".join(f"%(rollup_{i})s::{kind}[]" for i, kind in enumerate(_ROLLUP_TYPES))

# Each step reads the one before it (the rollups read the summary's RETURNING, the key set waits
# for the rollups' count), so PostgreSQL runs them in the general path's order: key, point,
# summary, rollups, key set. Data-modifying CTEs that read nothing of each other run in an order
# of the planner's choosing; this statement once ran its rollups before its summary, and a
# concurrent batch on the same key, taking them the other way, deadlocked with it.
#
# A key another transaction is creating right now is not in this statement's snapshot and its
# insert does nothing: `k` is then empty, nothing else happens, and the caller takes the general
# path, whose separate statements see the committed key.
_STATEMENT = f"""
WITH found AS (
    SELECT id FROM {_KEYS} WHERE name = %(key)s
), created AS (
    INSERT INTO {_KEYS} (name) SELECT %(key)s WHERE NOT EXISTS (SELECT 1 FROM found)
    ON CONFLICT DO NOTHING RETURNING id
), k AS (
    SELECT id FROM found UNION ALL SELECT id FROM created
), point AS (
    INSERT INTO {_POINTS} (run_id, key_id, step, timestamp, value, is_nan)
    SELECT %(run)s, k.id, %(step)s, %(timestamp)s, %(value)s, %(is_nan)s FROM k
    ON CONFLICT DO NOTHING RETURNING key_id
), summary AS (
    {
    summary_merge_sql(
        source="SELECT %(run)s, key_id, %(last_value)s::float8, %(is_nan)s, %(step)s, %(timestamp)s, "
        "%(low)s::float8, %(high)s::float8, 1 FROM point"
    )
}
    RETURNING key_id
), rollup AS (
    {
    rollup_merge_sql(
        source=f"SELECT %(run)s, summary.key_id, u.* FROM summary, unnest({_ROLLUP_ARRAYS}) AS u"
    )
}
    RETURNING level
), key_set AS (
    INSERT INTO {_KEY_SETS} (experiment_id, kind, key) SELECT %(experiment)s, 'metric', %(key)s FROM k
    WHERE (SELECT count(*) FROM rollup) >= 0
    ON CONFLICT DO NOTHING
)
SELECT (SELECT count(*) FROM k), (SELECT count(*) FROM point)
"""


def insert_single_point(
    *, run_id: int, experiment_id: int, key: str, step: int, timestamp: int, value: float, is_nan: bool
) -> int | None:
    """Store one validated point with its summary, rollups and key-set entry, in the caller's
    transaction; return how many points were new (0 or 1), or None when the key could not be
    resolved in this statement (the caller then takes the general path)."""
    finite_or_inf = None if is_nan else value
    params = {
        "key": key,
        "run": run_id,
        "experiment": experiment_id,
        "step": step,
        "timestamp": timestamp,
        "value": value,
        "is_nan": is_nan,
        "last_value": finite_or_inf,
        "low": finite_or_inf,  # NaN counts but is no min or max; ±Infinity is both, as in batches
        "high": finite_or_inf,
    }
    rows = rollup_rows([(0, step, timestamp, value, is_nan)])
    for index, column in enumerate(zip(*(row[1:] for row in rows), strict=True)):
        params[f"rollup_{index}"] = list(column)
    # In a pipeline, the BEGIN that psycopg sends before the transaction's first statement goes
    # in the same round trip as the statement.
    with prepared_cursor() as cursor, cursor.connection.pipeline():
        cursor.execute(_STATEMENT, params)
        keys, inserted = cursor.fetchone()
    return inserted if keys else None
