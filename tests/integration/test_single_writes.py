"""The one-statement single writes under concurrency, on real PostgreSQL and real connections."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from django.db import DatabaseError, connection, connections

from accounts.callers import TokenCaller
from accounts.models import ApiToken
from accounts.services import create_api_token
from audit.models import AuditEvent
from audit.verification import verify_chain
from registry.models import ModelVersion
from registry.services import create_model_version, create_model_version_from, create_registered_model
from tracker.models import MetricKey, MetricPoint, MetricRollup, MetricSummary
from tracker.selectors import chart_series
from tracker.services import MetricInput, log_batch, log_batch_to
from tracker.services.rollups import (
    _FOLD_LOCK,
    fold_all_stale_rollups,
    fold_stale_rollups,
    rebuild_metric_rollups,
)

pytestmark = pytest.mark.services


def _dsn() -> str:
    db = connection.settings_dict
    return psycopg.conninfo.make_conninfo(
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        user=db["USER"],
        password=db["PASSWORD"] or None,
        dbname=db["NAME"],
    )


def _waiting_on_a_lock(monitor: psycopg.Connection) -> bool:
    row = monitor.execute(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    ).fetchone()
    return bool(row and row[0])


def test_a_key_another_transaction_is_creating_is_found_after_it_commits(postgres, contributor, run):
    """The single-point statement cannot see a key committed while it waited (its snapshot is
    older); it then stores nothing, and log_batch takes the general path, which sees the key."""
    other = psycopg.connect(_dsn())
    other.execute("INSERT INTO tracker_metrickey (name) VALUES ('racing')")  # open, not committed
    result = {}

    def log() -> None:
        try:
            result["batch"] = log_batch(
                actor=contributor, run=run, metrics=[MetricInput("racing", 0.5, 3, 10)]
            )
        finally:
            connections.close_all()

    writer = threading.Thread(target=log)
    writer.start()
    with psycopg.connect(_dsn(), autocommit=True) as monitor:
        while writer.is_alive() and not _waiting_on_a_lock(monitor):
            threading.Event().wait(0.01)
    other.commit()
    other.close()
    writer.join()

    assert result["batch"].points_inserted == 1
    key = MetricKey.objects.get(name="racing")
    assert MetricPoint.objects.get(run=run).key_id == key.pk
    summary = MetricSummary.objects.get(run=run, key=key)
    assert (summary.count, summary.rollups_stale_from, summary.rollups_stale_to) == (1, 3, 3)
    assert fold_all_stale_rollups() == 1  # the general path leaves its rollups to the fold too
    assert MetricRollup.objects.filter(run=run, key=key).count() == 10
    assert verify_chain().ok


def test_single_points_logged_at_once_keep_the_summary_exact(postgres, contributor, run):
    def send(worker: int) -> int:
        try:
            return sum(
                log_batch(
                    actor=contributor, run=run, metrics=[MetricInput("loss", float(step), step, 1)]
                ).points_inserted
                for step in range(worker, 120, 4)
            )
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert sum(pool.map(send, range(4))) == 120
    summary = MetricSummary.objects.get(run=run)
    assert (summary.count, summary.last_step, summary.min_value, summary.max_value) == (120, 119, 0.0, 119.0)
    # A point whose key another writer is creating takes the general path, rollups and all.
    assert summary.rollups_stale_from in (0, 1, 2, 3, 4) and summary.rollups_stale_to == 119
    assert fold_stale_rollups() == 1
    assert sum(MetricRollup.objects.filter(run=run, level=0).values_list("count", flat=True)) == 120
    assert verify_chain().ok


@pytest.mark.parametrize("by_name", [False, True], ids=["checked", "by-name"])
def test_versions_registered_at_once_are_numbered_without_gaps_or_repeats(
    postgres, contributor, run, by_name
):
    """The UPDATE that raises the model's counter waits for the row's lock and then applies
    itself to the row its previous holder committed, so each version takes the next number. So
    too where the statement finds the model by name and the run by id itself."""
    model = create_registered_model(actor=contributor, name="racing-model")

    def unused_lookup() -> None:
        raise AssertionError("the statement found the model and the run itself")

    def register(_: int) -> int:
        try:
            if by_name:
                return create_model_version_from(
                    actor=contributor, model_name=model.name, run_id=run.uuid, find=unused_lookup
                ).version
            return create_model_version(actor=contributor, model=model, run=run).version
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=4) as pool:
        numbers = sorted(pool.map(register, range(24)))
    assert numbers == list(range(1, 25))
    assert sorted(ModelVersion.objects.filter(model=model).values_list("version", flat=True)) == numbers
    # Each version's event, written by the same statement, names it by its id and its number.
    events = AuditEvent.objects.filter(action="model_version.created", after__model="racing-model")
    assert sorted((event.object_id, event.after["version"]) for event in events) == sorted(
        (f"id:{pk}", number)
        for pk, number in ModelVersion.objects.filter(model=model).values_list("pk", "version")
    )
    assert verify_chain().ok


def test_single_points_and_batches_on_one_key_at_once_never_deadlock(postgres, contributor, run):
    """Both paths take the summary row (widening its stale rollup range), then the key set, in
    that order."""
    log_batch(actor=contributor, run=run, metrics=[MetricInput("loss", 0.0, 0, 1)])  # the key exists

    def send(worker: int) -> int:
        try:
            inserted = 0
            for round_ in range(10):
                base = 1 + (worker * 10 + round_) * 100
                if worker % 2:
                    points = [MetricInput("loss", 1.0, base + i, 1) for i in range(100)]
                else:
                    points = [MetricInput("loss", 1.0, base, 1)]
                inserted += log_batch(actor=contributor, run=run, metrics=points).points_inserted
            return inserted
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=4) as pool:
        inserted = sum(pool.map(send, range(4)))
    assert inserted == 2 * 10 * 100 + 2 * 10
    summary = MetricSummary.objects.get(run=run)
    assert summary.count == inserted + 1 == MetricPoint.objects.filter(run=run).count()
    assert verify_chain().ok


def _rollups(run) -> list[tuple]:
    return list(
        MetricRollup.objects.filter(run=run)
        .order_by("key_id", "level", "bucket")
        .values_list(
            "key_id", "level", "bucket", "count", "min_value", "min_step", "max_value", "max_step", "odd_step"
        )
    )


def test_folds_beside_single_points_and_batches_leave_the_rollups_the_points_give(postgres, contributor, run):
    """A fold recomputes buckets while single points and batches over the same buckets widen the
    stale range: whichever order their row locks fall in, nothing is lost or counted twice."""
    log_batch(actor=contributor, run=run, metrics=[MetricInput("loss", 0.0, 0, 1)])  # the key exists
    writing = threading.Event()
    writing.set()

    def write(worker: int) -> int:
        try:
            for round_ in range(15):
                base = 1 + (worker * 15 + round_) * 40
                if worker % 2:  # a batch, spread over the same buckets as the single points
                    points = [MetricInput("loss", (base + i) % 17 - 8.0, base + i, 1) for i in range(40)]
                    log_batch(actor=contributor, run=run, metrics=points)
                else:
                    for i in range(0, 40, 4):
                        log_batch(
                            actor=contributor,
                            run=run,
                            metrics=[MetricInput("loss", (base + i) * 0.5, base + i, 1)],
                        )
            return 0
        finally:
            connections.close_all()

    def fold() -> int:
        try:
            folded = 0
            while writing.is_set():
                folded += fold_stale_rollups()
            return folded
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=5) as pool:
        folder = pool.submit(fold)
        list(pool.map(write, range(4)))
        writing.clear()
        assert folder.result() > 0  # the fold really ran beside the writers
    fold_stale_rollups()
    assert MetricSummary.objects.get(run=run).rollups_stale_from is None
    kept = _rollups(run)
    rebuild_metric_rollups(run_id=run.pk)
    assert kept == _rollups(run)
    assert (
        sum(count for _, level, _, count, *_ in kept if level == 0)
        == MetricPoint.objects.filter(run=run).count()
    )


def test_the_fold_passes_over_a_series_a_writer_holds_and_never_waits(postgres, contributor, run):
    log_batch(actor=contributor, run=run, metrics=[MetricInput("loss", 1.0, 0, 1)])
    log_batch(actor=contributor, run=run, metrics=[MetricInput("loss", 2.0, 1, 1)])  # stale
    with psycopg.connect(_dsn()) as writer:  # a batch on the same series, not yet committed
        writer.execute("UPDATE tracker_metricsummary SET count = count WHERE run_id = %s", [run.pk])
        assert fold_stale_rollups() == 0
        writer.rollback()
    assert fold_stale_rollups() == 1
    assert MetricRollup.objects.get(run=run, level=0).count == 2


def _fold_stuck_on_a_rollup_row(run, monitor: psycopg.Connection, holder: psycopg.Connection):
    """A fold in a thread, claimed and stuck in its recompute on a rollup row `holder` locks:
    the thread's future, and the fold's backend pid."""
    holder.execute("SELECT 1 FROM tracker_metricrollup WHERE run_id = %s AND level = 0 FOR UPDATE", [run.pk])
    pids: list[int] = []

    def fold() -> int:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                pids.append(cursor.fetchone()[0])
            return fold_stale_rollups()
        finally:
            connections.close_all()

    pool = ThreadPoolExecutor(max_workers=1)
    folding = pool.submit(fold)
    while not folding.done() and not _waiting_on_a_lock(monitor):
        threading.Event().wait(0.01)
    pool.shutdown(wait=False)
    return folding, pids[0]


def _logged_series(contributor, run) -> list[MetricInput]:
    points = [MetricInput("loss", (step % 13) - 6.0, step, step) for step in range(500)]
    log_batch(actor=contributor, run=run, metrics=points[:300])
    fold_all_stale_rollups()  # the buckets exist, so a fold's recompute updates them
    log_batch(actor=contributor, run=run, metrics=points[300:])  # stale: 300..499
    return points


def _folded_equals_a_rebuild(run) -> bool:
    fold_all_stale_rollups()
    kept = _rollups(run)
    rebuild_metric_rollups(run_id=run.pk)
    return kept == _rollups(run)


def test_writers_never_wait_for_a_fold_recomputing_their_series(postgres, contributor, run):
    """The fold holds summary rows only to claim their ranges: while its recompute is stuck, a
    writer on the same series commits at once (a lock wait would hit its lock_timeout), charts
    still read the claimed steps from the points, and the new point is folded next time."""
    points = _logged_series(contributor, run)
    with psycopg.connect(_dsn(), autocommit=True) as monitor, psycopg.connect(_dsn()) as holder:
        folding, _ = _fold_stuck_on_a_rollup_row(run, monitor, holder)
        assert not folding.done()
        summary = MetricSummary.objects.get(run=run)
        assert (summary.rollups_stale_from, summary.rollups_folding_from, summary.rollups_folding_to) == (
            None, 300, 499
        )  # fmt: skip
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '5s'")
            log_batch(actor=contributor, run=run, metrics=[MetricInput("loss", 99.0, 777, 1)])
            cursor.execute("RESET lock_timeout")
        summary.refresh_from_db()
        assert (summary.rollups_stale_from, summary.rollups_stale_to, summary.count) == (777, 777, 501)
        (series,) = chart_series(runs=[run], keys=["loss"], max_points=1000)
        assert series.total_points == 501 and max(series.values) == 99.0
        assert list(zip(series.steps, series.values, strict=True)) == [
            *((p.step, p.value) for p in points),
            (777, 99.0),
        ]
        holder.rollback()
        assert folding.result(timeout=60) == 1
    summary.refresh_from_db()
    assert (summary.rollups_folding_from, summary.rollups_stale_from) == (None, 777)  # left for next time
    assert _folded_equals_a_rebuild(run)


def test_a_fold_killed_in_its_recompute_leaves_its_claim_to_the_next(postgres, contributor, run):
    _logged_series(contributor, run)
    with psycopg.connect(_dsn(), autocommit=True) as monitor, psycopg.connect(_dsn()) as holder:
        folding, pid = _fold_stuck_on_a_rollup_row(run, monitor, holder)
        monitor.execute("SELECT pg_terminate_backend(%s)", [pid])
        with pytest.raises((DatabaseError, psycopg.Error)):  # its connection died under it
            folding.result(timeout=60)
        holder.rollback()
    summary = MetricSummary.objects.get(run=run)
    assert (summary.rollups_folding_from, summary.rollups_folding_to) == (300, 499)
    assert fold_stale_rollups() == 1  # its lock died with its session; the claim is folded
    summary.refresh_from_db()
    assert summary.rollups_folding_from is None
    assert _folded_equals_a_rebuild(run)


def test_no_fold_runs_while_an_upload_merges_rollups(postgres, contributor, run):
    """An upload's rollup merges add to buckets: a fold recomputing them meanwhile, from points read
    before the upload committed, would overwrite what it added. The upload holds the fold off."""
    _logged_series(contributor, run)
    with psycopg.connect(_dsn()) as upload:
        upload.execute("SELECT pg_advisory_xact_lock_shared(%s)", [_FOLD_LOCK])  # hold_off_the_fold
        assert fold_stale_rollups() == 0
        assert MetricSummary.objects.get(run=run).rollups_stale_from == 300
    assert fold_stale_rollups() == 1
    assert _folded_equals_a_rebuild(run)


def test_one_token_writing_from_four_threads_at_once_is_checked_by_each_statement(postgres, contributor, run):
    """A training job's threads share one token. Each point's and each version's statement finds
    the token's user itself, and their touches of the stale token row skip one another rather than
    wait: every write lands by its one statement (none falls back to the lookup), the token is
    touched, and the chain verifies."""
    token, raw = create_api_token(user=contributor)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=None)
    model = create_registered_model(actor=contributor, name="token-model")
    # the key exists: one being created by another thread right now is a fallback of its own
    log_batch(actor=contributor, run=run, metrics=[MetricInput("loss", 0.0, -1, 1)])

    def never_looked_up() -> None:
        raise AssertionError("the statement checked the token itself")

    def write(n: int) -> int:
        try:
            caller = TokenCaller(raw, never_looked_up)
            if n % 4 == 0:
                version = create_model_version_from(
                    actor=caller, model_name=model.name, run_id=run.uuid, find=never_looked_up
                )
                return version.version
            log_batch_to(
                actor=caller,
                run_id=run.uuid,
                find_run=never_looked_up,
                metrics=[MetricInput("loss", 0.5, n, 1)],
            )
            return 0
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=4) as pool:
        numbers = sorted(number for number in pool.map(write, range(64)) if number)
    assert numbers == list(range(1, 17))
    assert MetricPoint.objects.filter(run=run, step__gte=0).count() == 48
    creators = ModelVersion.objects.filter(model=model).values_list("created_by", flat=True)
    assert set(creators) == {contributor.pk}
    written = AuditEvent.objects.filter(action__in=["run.batch_logged", "model_version.created"])
    assert written.count() == 64 + 1  # with the first point's
    assert set(written.values_list("actor_id", "actor_name")) == {(contributor.pk, contributor.username)}
    assert ApiToken.objects.get(pk=token.pk).last_used_at is not None
    assert verify_chain().ok
