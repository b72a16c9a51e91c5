"""Logging params, metrics and tags: one validated batch, one transaction, one audit event."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from itertools import groupby
from operator import itemgetter
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from accounts.callers import user_of
from audit.services import record_event
from config.db import pipelined, prepared_cursor
from config.exceptions import Conflict, InvalidInput, NotFound
from config.inputs import TagInput
from tracker.models import MetricKey, Param, Run, Tag
from tracker.permissions import Level, require_run_permission
from tracker.validation import (
    MAX_INT64,
    MAX_METRICS_PER_BATCH,
    MAX_PARAMS_PER_BATCH,
    MAX_TAGS_PER_BATCH,
    MIN_INT64,
    coerce_int64,
    coerce_metric_value,
    validate_key,
)

from .inputs import BatchResult, MetricInput, MetricTuple, ParamInput
from .key_sets import record_keys
from .logged_models import ModelMetricInput, log_model_metrics
from .metric_store import CopyMode, PointRow, PointsAlreadyStored, SummaryRow, insert_points, upsert_summaries
from .rollups import RollupRow, merge_rollup_rows, rollup_rows, rollups_left_to_fold
from .runs import RUN_NAME_TAG, ensure_run_writable
from .single_point import log_single_point, statement_params
from .validators import check_batch_size, validated_params, validated_tags


def _validated_metric_rows(metrics: Sequence[MetricTuple]) -> list[tuple[str, int, int, float, bool]]:
    """(key, step, timestamp, value, is_nan) per metric, exact duplicates within the batch removed.

    This loop runs for every logged point, so well-typed values take a fast path and only
    unusual ones go through the full coercion (which names the field when it fails).
    """
    now_ms = int(time.time() * 1000)
    seen_keys: set[str] = set()
    rows: dict[tuple[str, int, int, float, bool], None] = {}
    isnan = math.isnan
    for index, (key, value, step, timestamp) in enumerate(metrics):
        if key not in seen_keys:
            validate_key(key, field=f"metrics[{index}].key")
            seen_keys.add(key)
        if type(value) is not float:
            value = coerce_metric_value(value, field=f"metrics[{index}].value")
        if step is None:
            step = 0
        elif type(step) is not int or not MIN_INT64 <= step <= MAX_INT64:
            step = coerce_int64(step, field=f"metrics[{index}].step")
        if timestamp is None:
            timestamp = now_ms
        elif type(timestamp) is not int or not 0 <= timestamp <= MAX_INT64:
            timestamp = coerce_int64(timestamp, field=f"metrics[{index}].timestamp", minimum=0)
        if isnan(value):
            rows[(key, step, timestamp, 0.0, True)] = None
        else:
            rows[(key, step, timestamp, value, False)] = None
    return list(rows)


_KEY_IDS = f"SELECT name, id FROM {MetricKey._meta.db_table}"
_KEY_IDS_OF_ARRAY = f"{_KEY_IDS} WHERE name = ANY(%s::text[])"


def metric_key_ids(names: Iterable[str]) -> dict[str, int]:
    """Ids for metric names, creating the missing ones (safe under concurrent creation)."""
    names = set(names)
    if not names:
        return {}
    if connection.vendor == "postgresql":
        # One array: the same text for any number of names, so it is prepared, and psycopg does
        # not scan a placeholder per name (0.2 ms of CPU for a hundred; bench/README.md).
        with prepared_cursor() as cursor:
            cursor.execute(_KEY_IDS_OF_ARRAY, [list(names)])
            found = dict(cursor.fetchall())
    else:
        placeholders = ", ".join(["%s"] * len(names))
        with connection.cursor() as cursor:  # plain SQL: every metric batch asks this
            cursor.execute(f"{_KEY_IDS} WHERE name IN ({placeholders})", list(names))
            found = dict(cursor.fetchall())
    missing = names - found.keys()
    if missing:
        MetricKey.objects.bulk_create([MetricKey(name=n) for n in sorted(missing)], ignore_conflicts=True)
        found.update(MetricKey.objects.filter(name__in=missing).values_list("name", "id"))
    return found


@dataclass(frozen=True)
class MetricMerges:
    """What a set of new points adds to a run's summaries and rollups, worked out in Python.

    On PostgreSQL the rollups are left to the fold (`rollups.fold_stale_rollups`, a few seconds
    later): `rollups` is None and each summary carries the step range its points cover."""

    summaries: list[SummaryRow]
    steps: list[tuple[int, int]]  # per summary, its points' lowest and highest step
    rollups: list[RollupRow] | None

    @classmethod
    def of(cls, rows: Sequence[PointRow]) -> MetricMerges:
        """Last, min, max, count and step range per key, and the rollup buckets unless the fold
        makes them. Sorted by (key, step, timestamp, value), each key's newest point is the last
        of its group, as MLflow orders them (the batch arrives sorted already, which costs the
        sort one pass)."""
        summaries: list[SummaryRow] = []
        steps: list[tuple[int, int]] = []
        for key_id, group in groupby(sorted(rows), itemgetter(0)):
            points = list(group)
            _, step, timestamp, value, is_nan = points[-1]
            values = [point[3] for point in points if not point[4]]  # NaN counts, but no min or max
            low, high = (min(values), max(values)) if values else (None, None)
            summaries.append(
                (key_id, None if is_nan else value, is_nan, step, timestamp, low, high, len(points))
            )
            steps.append((points[0][1], step))
        rollups = None if rollups_left_to_fold() else rollup_rows(rows)
        return cls(summaries=summaries, steps=steps, rollups=rollups)

    def merge_into(self, run_id: int) -> None:
        """Summaries, then rollups, both in key order (see log_batch)."""
        if self.rollups is None:
            upsert_summaries(run_id=run_id, rows=self.summaries, stale_steps=self.steps)
            return
        upsert_summaries(run_id=run_id, rows=self.summaries)
        merge_rollup_rows(run_id=run_id, rollups=self.rollups)  # the charts' buckets


def update_metric_summaries(*, run: Run, rows: Sequence[PointRow]) -> None:
    """Fold newly inserted points (each once) into the run's summaries and rollups (on PostgreSQL,
    their rollups stale until the fold)."""
    MetricMerges.of(rows).merge_into(run.pk)


BATCH_LOGGED = "run.batch_logged"


def _batch_event_after(
    *, received: int, inserted: int, keys: Sequence[str], params: dict[str, str], tags: dict[str, str]
) -> dict[str, Any]:
    return {
        "metrics": {"received": received, "inserted": inserted, "keys": list(keys)},
        "params": params,
        "tags": tags,
    }


def _log_single_point(
    actor: Any, run_uuid: str, row: tuple[str, int, int, float, bool], *, received: int
) -> int | None:
    """One point in one statement and one round trip on PostgreSQL (single_point.py), which
    finds the run and checks the actor itself, committed: the number of new points, or None when
    the checked, general path must store it (another database, a run the statement did not find
    writable, or a key still being created)."""
    if connection.vendor != "postgresql":
        return None
    key, step, timestamp, value, is_nan = row
    params = statement_params(
        actor=actor,
        run_uuid=run_uuid,
        key=key,
        step=step,
        timestamp=timestamp,
        value=value,
        is_nan=is_nan,
        event_action=BATCH_LOGGED,
        event_after=_batch_event_after(received=received, inserted=0, keys=[key], params={}, tags={}),
    )
    return None if params is None else log_single_point(params)


def _single_point_result(metrics: Sequence[MetricTuple], inserted: int) -> BatchResult:
    return BatchResult(
        points_received=len(metrics),
        points_inserted=inserted,
        params_logged=0,
        tags_set=0,
        metric_keys=(metrics[0][0],),
    )


def _store_params(run: Run, params: dict[str, str]) -> int:
    """Insert new params; a key already logged with another value is a conflict naming both."""
    if not params:
        return 0
    stored = dict(Param.objects.filter(run=run, key__in=params).values_list("key", "value"))
    for key, value in params.items():
        if key in stored and stored[key] != value:
            raise Conflict(
                f"param {key!r} was already logged as {stored[key]!r}; it cannot be changed to {value!r}",
                field=f"params.{key}",
            )
    new = [Param(run=run, key=k, value=v) for k, v in params.items() if k not in stored]
    Param.objects.bulk_create(new)
    return len(new)


def _store_tags(run: Run, tags: dict[str, str]) -> int:
    """Upsert tags; MLflow's name tag renames the run, so the two never disagree."""
    if not tags:
        return 0
    if RUN_NAME_TAG in tags:
        Run.objects.filter(pk=run.pk).update(name=tags[RUN_NAME_TAG], updated_at=timezone.now())
    Tag.objects.bulk_create(
        [Tag(run=run, key=k, value=v) for k, v in tags.items()],
        update_conflicts=True,
        unique_fields=["run", "key"],
        update_fields=["value"],
    )
    return len(tags)


def log_batch(
    *,
    actor: Any,
    run: Run,
    metrics: Sequence[MetricTuple] = (),
    params: Sequence[ParamInput] = (),
    tags: Sequence[TagInput] = (),
    model_metrics: Sequence[ModelMetricInput] = (),
) -> BatchResult:
    """Log params, metrics and tags together: all stored, or none (MLflow's limits apply).

    `model_metrics` repeats those of `metrics` that name a logged model (MLflow 3's `model_id`);
    they are attached to their models in the same transaction. A lone metric point goes in one
    statement that checks the actor and the run itself (`log_batch_to`).
    """
    return log_batch_to(
        actor=actor,
        run_id=run.uuid,
        find_run=lambda: run,
        metrics=metrics,
        params=params,
        tags=tags,
        model_metrics=model_metrics,
    )


def _log_checked_batch(
    *,
    actor: Any,
    run: Run,
    metrics: Sequence[MetricTuple],
    params: Sequence[ParamInput],
    tags: Sequence[TagInput],
    model_metrics: Sequence[ModelMetricInput],
) -> BatchResult:
    """`log_batch` once the run is at hand: the actor's permission, the limits and every value
    checked here, each refusal naming its field."""
    require_run_permission(actor, run, Level.EDIT, action="Logging to a run")
    check_batch_size(metrics, MAX_METRICS_PER_BATCH, "metrics")
    check_batch_size(params, MAX_PARAMS_PER_BATCH, "params")
    check_batch_size(tags, MAX_TAGS_PER_BATCH, "tags")
    metric_rows = _validated_metric_rows(metrics)
    param_values = validated_params(params)
    tag_values = validated_tags(tags)
    # COPY cannot skip points already stored (a client retrying after a lost answer); outside a
    # caller's transaction a first attempt goes without a savepoint around it (two round trips
    # fewer), and a retried batch, which aborts it, is stored again point by point.
    stored = partial(
        _store_batch,
        actor=actor,
        run=run,
        received=len(metrics),
        metric_rows=metric_rows,
        param_values=param_values,
        tag_values=tag_values,
        model_metrics=model_metrics,
    )
    if connection.in_atomic_block:
        return stored(copy=CopyMode.SAVEPOINT)
    try:
        return stored(copy=CopyMode.BARE)
    except PointsAlreadyStored:
        return stored(copy=CopyMode.NONE)


def log_batch_to(
    *,
    actor: Any,
    run_id: str,
    find_run: Callable[[], Run],
    metrics: Sequence[MetricTuple] = (),
    params: Sequence[ParamInput] = (),
    tags: Sequence[TagInput] = (),
    model_metrics: Sequence[ModelMetricInput] = (),
) -> BatchResult:
    """`log_batch` to the run `run_id` names, which `find_run` looks up (and refuses) as the
    caller's API words it. `actor` may be a `TokenCaller`: the lone point's statement then checks
    the token too (accounts.callers).

    A lone metric point, the commonest call a training script makes, goes in one statement that
    also finds the run and checks the actor's permission on it: one round trip where the lookup
    and the write were two. Anything else, and a point that statement did not store (a missing,
    deleted or forbidden run, a bad value), takes `find_run` and the checked path, so every
    refusal and error is the one that path gives.
    """
    if len(metrics) == 1 and not (params or tags or model_metrics):
        try:
            rows = _validated_metric_rows(metrics)
        except InvalidInput:
            rows = []  # the checked path reports it, after the run's own lookup, as always
        if rows:
            single = _log_single_point(actor, run_id, rows[0], received=1)
            if single is not None:
                return _single_point_result(metrics, single)
    return _log_checked_batch(
        actor=user_of(actor),  # looked up now, if the statement took its token
        run=find_run(),
        metrics=metrics,
        params=params,
        tags=tags,
        model_metrics=model_metrics,
    )


def _store_batch(
    *,
    actor: Any,
    run: Run,
    received: int,
    metric_rows: list[tuple[str, int, int, float, bool]],
    param_values: dict[str, str],
    tag_values: dict[str, str],
    model_metrics: Sequence[ModelMetricInput],
    copy: CopyMode,
) -> BatchResult:
    """log_batch's transaction: everything validated, nothing stored yet."""
    with transaction.atomic():
        if param_values or tag_values:
            # Batches with params or tags are serialised per run: a param conflict is decided
            # against committed data, and tag upserts never interleave. Metric-only batches
            # (the hot path) need no lock: points are de-duplicated by their primary key and
            # summaries merged by an upsert, and both are written in key order, so concurrent
            # batches take row locks in the same order and cannot deadlock. The run lock is
            # FOR NO KEY UPDATE (see docs/architecture.md, "Concurrency and durability").
            locked = (
                Run.objects.select_for_update(no_key=True)
                .filter(pk=run.pk)
                .only("id", "uuid", "lifecycle")
                .first()
            )
            if locked is None:
                raise NotFound(f"run {run.uuid} does not exist", field="run_id")
            run.lifecycle = locked.lifecycle
        ensure_run_writable(run)
        params_logged = _store_params(run, param_values)
        tags_set = _store_tags(run, tag_values)
        points_inserted = 0
        inserted: list[PointRow] = []
        key_names: tuple[str, ...] = ()
        if metric_rows:
            key_ids = metric_key_ids(row[0] for row in metric_rows)
            point_rows = sorted(
                (key_ids[key], step, ts, value, nan) for key, step, ts, value, nan in metric_rows
            )
            # While PostgreSQL stores a COPY, this process works out the merges as if every point
            # were new, which they are unless the batch is a retry (then they are redone).
            expected: list[MetricMerges] = []
            inserted = insert_points(
                run_id=run.pk,
                rows=point_rows,
                copy=copy,
                meanwhile=lambda: expected.append(MetricMerges.of(point_rows)),
            )
            if expected and len(inserted) == len(point_rows):
                merges = expected[0]
            else:
                merges = MetricMerges.of(inserted)
            points_inserted, key_names = len(inserted), tuple(sorted(key_ids))
        if model_metrics:
            log_model_metrics(actor=actor, run=run, metrics=model_metrics)
        # The merges and the event go together: one round trip for all of them.
        with pipelined():
            if inserted:
                merges.merge_into(run.pk)
            record_keys(
                experiment_id=run.experiment_id,
                keys=[
                    *(("param", key) for key in param_values),
                    *(("tag", key) for key in tag_values),
                    *(("metric", key) for key in key_names),
                ],
            )
            record_event(
                actor=actor,
                action=BATCH_LOGGED,
                target=run,
                after=_batch_event_after(
                    received=received,
                    inserted=points_inserted,
                    keys=key_names,
                    params=param_values,
                    tags=tag_values,
                ),
            )
    return BatchResult(
        points_received=received,
        points_inserted=points_inserted,
        params_logged=params_logged,
        tags_set=tags_set,
        metric_keys=key_names,
    )


def log_metric(*, actor: Any, run: Run, point: MetricInput) -> BatchResult:
    return log_batch(actor=actor, run=run, metrics=[point])


def log_params(*, actor: Any, run: Run, params: Sequence[ParamInput]) -> BatchResult:
    return log_batch(actor=actor, run=run, params=params)


def set_tags(*, actor: Any, run: Run, tags: Sequence[TagInput]) -> BatchResult:
    return log_batch(actor=actor, run=run, tags=tags)


def delete_tag(*, actor: Any, run: Run, key: str) -> None:
    """Remove a run tag; deleting a tag that does not exist is an error naming the key."""
    require_run_permission(actor, run, Level.EDIT, action="Deleting a run tag")
    validate_key(key, field="key")
    with transaction.atomic():
        ensure_run_writable(run)
        tag = Tag.objects.filter(run=run, key=key).first()
        if tag is None:
            raise NotFound(f"run {run.uuid} has no tag {key!r}", field="key")
        tag.delete()
        record_event(actor=actor, action="run.tag_deleted", target=run, before={key: tag.value})
