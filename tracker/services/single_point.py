"""One metric point in one SQL statement: the `log_metric` hot path on PostgreSQL.

A training script's `log_metric` calls cost the server round trips, not work: the general path
asks for the key's id, inserts the point, merges the summary, the rollups and the experiment's
key set, a statement each, then appends the audit event and commits. Here one statement does all
six with data-modifying CTEs, sent together with its BEGIN and COMMIT (config.db
.execute_committed), so the point costs one round trip. The rules are the general path's own:
the summary and rollup upserts are the same SQL, their rows come from the same Python
functions, the key set gets the name whether or not the point was new (a retried point inserts
nothing, like the general path), and the event is the one `log_batch` records, prepared by the
audit app's own functions.
"""

from __future__ import annotations

from typing import Any

from audit.services import event_insert_sql, event_params
from config.db import column_arrays, execute_committed
from tracker.models import ExperimentKey, MetricKey, MetricPoint, Run

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
# The event's `after` as log_batch builds it, with `metrics.inserted` counted from `point`.
_COUNTED_AFTER = (
    "jsonb_set(%(event_after)s::jsonb, '{metrics,inserted}', to_jsonb((SELECT count(*) FROM point)))"
)
_ROLLUP_ARRAYS = ", ".join(f"%(rollup_{i})s::{kind}[]" for i, kind in enumerate(_ROLLUP_TYPES))


_SUMMARY_FROM_POINT = summary_merge_sql(
    source="SELECT %(run)s, key_id, %(last_value)s::float8, %(is_nan)s, %(step)s, %(timestamp)s, "
    "%(low)s::float8, %(high)s::float8, 1 FROM point"
)
_ROLLUPS_FROM_SUMMARY = rollup_merge_sql(
    source=f"SELECT %(run)s, summary.key_id, u.* FROM summary, unnest({_ROLLUP_ARRAYS}) AS u"
)


# Each step reads the one before it (the rollups read the summary's RETURNING, the key set waits
# for the rollups' count), so PostgreSQL runs them in the general path's order: key, point,
# summary, rollups, key set. Data-modifying CTEs that read nothing of each other run in an order
# of the planner's choosing; this statement once ran its rollups before its summary, and a
# concurrent batch on the same key, taking them the other way, deadlocked with it.
#
# A key another transaction is creating right now is not in this statement's snapshot and its
# insert does nothing: `k` is then empty, nothing else happens (the event too is written `FROM k`),
# and the caller takes the general path, whose separate statements see the committed key. The
# event's `after` counts what `point` really inserted.
def statement_sql(*, rollups: bool = True, event: bool = True) -> str:
    """The single-point statement. The service always sends all of it; bench/writes.py's `parts`
    phase leaves out the rollups or the audit event to measure what each costs the database."""
    rollup = f"""), rollup AS (
    {_ROLLUPS_FROM_SUMMARY}
    RETURNING level"""
    audit = f"""), event AS (
    {event_insert_sql(prefix="event_", computed={"after": _COUNTED_AFTER})} FROM k"""
    return f"""
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
    {_SUMMARY_FROM_POINT}
    RETURNING key_id
{rollup if rollups else ""}), key_set AS (
    INSERT INTO {_KEY_SETS} (experiment_id, kind, key) SELECT %(experiment)s, 'metric', %(key)s FROM k
    WHERE (SELECT count(*) FROM {"rollup" if rollups else "summary"}) >= 0
    ON CONFLICT DO NOTHING
{audit if event else ""})
SELECT (SELECT count(*) FROM k), (SELECT count(*) FROM point)
"""


STATEMENT = statement_sql()


def log_single_point(params: dict[str, Any]) -> int | None:
    """Store one validated point (STATEMENT's parameters, from `statement_params`) with its
    summary, rollups, key-set entry and audit event and commit them (or join the caller's
    transaction); return how many points were new (0 or 1), or None when the key could not be
    resolved in this statement (nothing was written: the caller then takes the general path).
    The event's `metrics.inserted` is counted in SQL."""
    keys, inserted = execute_committed((STATEMENT, params))
    return inserted if keys else None


def statement_params(
    *,
    actor: Any,
    run: Run,
    key: str,
    step: int,
    timestamp: int,
    value: float,
    is_nan: bool,
    event_action: str,
    event_after: dict[str, Any],
) -> dict[str, Any]:
    """The named parameters of STATEMENT for one point (bench/writes.py sends it bare too)."""
    finite_or_inf = None if is_nan else value
    params: dict[str, Any] = {
        "key": key,
        "run": run.pk,
        "experiment": run.experiment_id,
        "step": step,
        "timestamp": timestamp,
        "value": value,
        "is_nan": is_nan,
        "last_value": finite_or_inf,
        "low": finite_or_inf,  # NaN counts but is no min or max; ±Infinity is both, as in batches
        "high": finite_or_inf,
    }
    rows = rollup_rows([(0, step, timestamp, value, is_nan)])
    for index, column in enumerate(column_arrays(row[1:] for row in rows)):
        params[f"rollup_{index}"] = column
    params.update(
        event_params(prefix="event_", actor=actor, action=event_action, target=run, after=event_after)
    )
    return params
