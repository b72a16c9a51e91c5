"""One metric point in one SQL statement: the `log_metric` hot path on PostgreSQL.

A training script's `log_metric` calls cost the server round trips, not work: the general path
looks the run up and checks the caller's permission, asks for the key's id, inserts the point,
merges the summary and the experiment's key set, a statement each, then appends the audit event
and commits. Here one statement does all of it with data-modifying CTEs, sent alone in autocommit
mode (config.db.execute_committed), so the point costs one round trip. The run is found by its id
only if it is active and the actor may edit it (`accounts.permissions.level_guard_sql`, worked out
from the same rules as `require_level`); where it is not, nothing is written and the caller takes
the checked path, whose error says why. The rules are the general path's own: the summary
upsert is the same SQL, the key set gets the name whether or not the point was new (a retried
point inserts nothing, like the general path), and the event is the one `log_batch` records,
prepared by the audit app's own functions.

The point's chart rollups are not written here. Ten rollup upserts were half of this statement's
time and most of its row locks (bench/writes.py's `parts` phase); instead the summary row, which
the statement updates anyway, widens its stale step range, and `rollups.fold_stale_rollups`
brings those buckets up to date a few seconds later. Chart reads meanwhile take the points for
the stale buckets (tracker.selectors.charts).
"""

from __future__ import annotations

from typing import Any

from accounts.callers import CALLER_EVENT_FIELDS, caller_sql, guard_params, in_statement
from accounts.permissions import Level, level_guard_sql
from audit.services import event_insert_sql, event_params
from config.db import execute_committed
from tracker.models import Experiment, ExperimentKey, Lifecycle, MetricKey, MetricPoint, Run

from .metric_store import summary_merge_sql

_RUNS = Run._meta.db_table
_KEYS = MetricKey._meta.db_table
_POINTS = MetricPoint._meta.db_table
_KEY_SETS = ExperimentKey._meta.db_table
# The event's `after` as log_batch builds it, with `metrics.inserted` counted from `point`.
_COUNTED_AFTER = (
    "jsonb_set(%(event_after)s::jsonb, '{metrics,inserted}', to_jsonb((SELECT count(*) FROM point)))"
)

# The run is found only where `require_run_permission(actor, run, Level.EDIT)` and
# `ensure_run_writable` would pass.
_EDIT_GUARD = level_guard_sql(Experiment, target="run.experiment_id")
_CALLER_EDIT_GUARD = level_guard_sql(Experiment, target="run.experiment_id", caller=True)

# The point's step opens or widens the summary's stale range; a point already stored (`point`
# empty) changes nothing.
_SUMMARY_FROM_POINT = summary_merge_sql(
    source="SELECT run_id, key_id, %(last_value)s::float8, %(is_nan)s, %(step)s, %(timestamp)s, "
    "%(low)s::float8, %(high)s::float8, 1, %(step)s, %(step)s FROM point",
    stale_rollups=True,
)


# Each step reads the one before it (the key set waits for the summary's RETURNING), so
# PostgreSQL runs them in the general path's order: run, key, point, summary, key set. Nothing
# is written, not even a new key's name, unless `r` found the run writable. Data-modifying
# CTEs that read nothing of each other run in an order of the planner's choosing; this statement
# once ran its rollups before its summary, and a concurrent batch on the same key, taking them
# the other way, deadlocked with it.
#
# A key another transaction is creating right now is not in this statement's snapshot and its
# insert does nothing: `k` is then empty, nothing else happens (the event too is written `FROM k`),
# and the caller takes the general path, whose separate statements see the committed key. The
# event's `after` counts what `point` really inserted.
def statement_sql(*, event: bool = True, caller: bool = False) -> str:
    """The single-point statement. The service always sends all of it; bench/writes.py's `parts`
    phase leaves out the audit event to measure what it costs the database. `caller`: the actor
    is the bearer token's user, found by the statement (accounts.callers), not parameters."""
    computed = {"after": _COUNTED_AFTER, **(CALLER_EVENT_FIELDS if caller else {})}
    audit = f"""), event AS (
    {event_insert_sql(prefix="event_", computed=computed)} FROM k"""
    callers, guard = (caller_sql() + ", ", _CALLER_EDIT_GUARD) if caller else ("", _EDIT_GUARD)
    return f"""
WITH {callers}r AS (
    SELECT run.id, run.experiment_id FROM {_RUNS} run{", caller" if caller else ""}
    WHERE run.uuid = %(run_uuid)s AND run.lifecycle = %(active)s AND {guard}
), found AS (
    SELECT id FROM {_KEYS} WHERE name = %(key)s AND EXISTS (SELECT 1 FROM r)
), created AS (
    INSERT INTO {_KEYS} (name) SELECT %(key)s
    WHERE EXISTS (SELECT 1 FROM r) AND NOT EXISTS (SELECT 1 FROM found)
    ON CONFLICT DO NOTHING RETURNING id
), k AS (
    SELECT id FROM found UNION ALL SELECT id FROM created
), point AS (
    INSERT INTO {_POINTS} (run_id, key_id, step, timestamp, value, is_nan)
    SELECT r.id, k.id, %(step)s, %(timestamp)s, %(value)s, %(is_nan)s FROM r, k
    ON CONFLICT DO NOTHING RETURNING run_id, key_id
), summary AS (
    {_SUMMARY_FROM_POINT}
    RETURNING key_id
), key_set AS (
    INSERT INTO {_KEY_SETS} (experiment_id, kind, key) SELECT r.experiment_id, 'metric', %(key)s FROM r, k
    WHERE (SELECT count(*) FROM summary) >= 0
    ON CONFLICT DO NOTHING
{audit if event else ""})
SELECT (SELECT count(*) FROM r), (SELECT count(*) FROM k), (SELECT count(*) FROM point)
"""


STATEMENT = statement_sql()
CALLER_STATEMENT = statement_sql(caller=True)


def log_single_point(params: dict[str, Any]) -> int | None:
    """Store one validated point (STATEMENT's parameters, from `statement_params`) with its
    summary (its rollups left stale), key-set entry and audit event and commit them (or join the
    caller's transaction); return how many points were new (0 or 1), or None when nothing was
    written: the run was missing, deleted or not the actor's to edit, or its key was being
    created by another transaction. The caller then takes the checked, general path. The event's
    `metrics.inserted` is counted in SQL."""
    counted = execute_committed(CALLER_STATEMENT if "caller_token" in params else STATEMENT, params)
    assert counted is not None  # its last SELECT counts, so it always answers a row
    runs, keys, inserted = counted
    return inserted if runs and keys else None


def statement_params(
    *,
    actor: Any,
    run_uuid: str,
    key: str,
    step: int,
    timestamp: int,
    value: float,
    is_nan: bool,
    event_action: str,
    event_after: dict[str, Any],
) -> dict[str, Any] | None:
    """The named parameters of STATEMENT for one point (bench/writes.py sends it bare too), or
    None where the actor's role alone forbids logging (no statement can succeed). For a
    `TokenCaller` not looked up yet, those of CALLER_STATEMENT, which finds and checks them."""
    guard = guard_params(actor, (Experiment, Level.EDIT, "guard_"))
    if guard is None:
        return None
    finite_or_inf = None if is_nan else value
    params: dict[str, Any] = {
        "run_uuid": run_uuid,
        "active": Lifecycle.ACTIVE.value,
        "key": key,
        "step": step,
        "timestamp": timestamp,
        "value": value,
        "is_nan": is_nan,
        "last_value": finite_or_inf,
        "low": finite_or_inf,  # NaN counts but is no min or max; ±Infinity is both, as in batches
        "high": finite_or_inf,
        **guard,
    }
    params.update(
        event_params(
            prefix="event_",
            actor=None if in_statement(actor) else actor,  # else from the statement's `caller` row
            action=event_action,
            object_type=Run._meta.label_lower,
            object_id=run_uuid,  # Run.audit_id
            after=event_after,
        )
    )
    return params
