"""One metric point in one SQL statement: the `log_metric` hot path on PostgreSQL.

A training script's `log_metric` calls cost the server round trips, not work: the general path
asks for the key's id, inserts the point, merges the summary and the experiment's key set, a
statement each, then appends the audit event and commits. Here one statement does all five with
data-modifying CTEs, sent alone in autocommit mode (config.db.execute_committed), so the point
costs one round trip. The rules are the general path's own: the summary upsert is the same SQL,
the key set gets the name whether or not the point was new (a retried point inserts nothing,
like the general path), and the event is the one `log_batch` records, prepared by the audit
app's own functions.

The point's chart rollups are not written here. Ten rollup upserts were half of this statement's
time and most of its row locks (bench/writes.py's `parts` phase); instead the summary row, which
the statement updates anyway, widens its stale step range, and `rollups.fold_stale_rollups`
brings those buckets up to date a few seconds later. Chart reads meanwhile take the points for
the stale buckets (tracker.selectors.charts).
"""

from __future__ import annotations

from typing import Any

from audit.services import event_insert_sql, event_params
from config.db import execute_committed
from tracker.models import ExperimentKey, MetricKey, MetricPoint, Run

from .metric_store import summary_merge_sql

_KEYS = MetricKey._meta.db_table
_POINTS = MetricPoint._meta.db_table
_KEY_SETS = ExperimentKey._meta.db_table
# The event's `after` as log_batch builds it, with `metrics.inserted` counted from `point`.
_COUNTED_AFTER = (
    "jsonb_set(%(event_after)s::jsonb, '{metrics,inserted}', to_jsonb((SELECT count(*) FROM point)))"
)

# The point's step opens or widens the summary's stale range; a point already stored (`point`
# empty) changes nothing.
_SUMMARY_FROM_POINT = summary_merge_sql(
    source="SELECT %(run)s, key_id, %(last_value)s::float8, %(is_nan)s, %(step)s, %(timestamp)s, "
    "%(low)s::float8, %(high)s::float8, 1, %(step)s, %(step)s FROM point",
    stale_rollups=True,
)


# Each step reads the one before it (the key set waits for the summary's RETURNING), so
# PostgreSQL runs them in the general path's order: key, point, summary, key set. Data-modifying
# CTEs that read nothing of each other run in an order of the planner's choosing; this statement
# once ran its rollups before its summary, and a concurrent batch on the same key, taking them
# the other way, deadlocked with it.
#
# A key another transaction is creating right now is not in this statement's snapshot and its
# insert does nothing: `k` is then empty, nothing else happens (the event too is written `FROM k`),
# and the caller takes the general path, whose separate statements see the committed key. The
# event's `after` counts what `point` really inserted.
def statement_sql(*, event: bool = True) -> str:
    """The single-point statement. The service always sends all of it; bench/writes.py's `parts`
    phase leaves out the audit event to measure what it costs the database."""
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
), key_set AS (
    INSERT INTO {_KEY_SETS} (experiment_id, kind, key) SELECT %(experiment)s, 'metric', %(key)s FROM k
    WHERE (SELECT count(*) FROM summary) >= 0
    ON CONFLICT DO NOTHING
{audit if event else ""})
SELECT (SELECT count(*) FROM k), (SELECT count(*) FROM point)
"""


STATEMENT = statement_sql()


def log_single_point(params: dict[str, Any]) -> int | None:
    """Store one validated point (STATEMENT's parameters, from `statement_params`) with its
    summary (its rollups left stale), key-set entry and audit event and commit them (or join the caller's
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
    params.update(
        event_params(prefix="event_", actor=actor, action=event_action, target=run, after=event_after)
    )
    return params
