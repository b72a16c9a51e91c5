"""Concurrent writers on real PostgreSQL: row locks keep summaries exact and the chain whole."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections

from audit.sealing import seal_events
from audit.verification import verify_chain
from config.inputs import TagInput
from registry.services import (
    create_model_version,
    create_registered_model,
    set_alias,
    set_registered_model_tag,
)
from tracker.models import MetricPoint, MetricSummary
from tracker.services import MetricInput, create_experiment, log_batch

pytestmark = pytest.mark.services


def _in_thread(fn):
    def wrapper(*args):
        try:
            return fn(*args)
        finally:
            connections.close_all()

    return wrapper


def test_concurrent_batches_to_one_run_keep_the_summary_exact(postgres, contributor, run):
    @_in_thread
    def send(worker: int) -> int:
        points = [
            MetricInput("loss", float(worker * 1000 + i), step=worker * 1000 + i, timestamp=i)
            for i in range(500)
        ]
        return log_batch(actor=contributor, run=run, metrics=points).points_inserted

    with ThreadPoolExecutor(max_workers=4) as pool:
        inserted = sum(pool.map(send, range(8)))
    assert inserted == 4000 == MetricPoint.objects.filter(run=run).count()
    summary = MetricSummary.objects.get(run=run, key__name="loss")
    assert (summary.count, summary.last_step, summary.min_value, summary.max_value) == (
        4000,
        7499,
        0.0,
        7499.0,
    )
    assert verify_chain().ok


def test_the_same_points_sent_concurrently_are_stored_and_counted_once(postgres, contributor, run):
    """Metric batches take no run lock: the primary key and the summary upsert keep retries exact."""

    @_in_thread
    def send(worker: int) -> int:
        shared = [
            MetricInput(key, i / 1000, step=i, timestamp=1) for i in range(250) for key in ("acc", "f1")
        ]
        own = [MetricInput("acc", 0.5, step=10_000 + worker, timestamp=1)]
        # Half the workers send the shared points in reverse: the order must not matter.
        return log_batch(
            actor=contributor, run=run, metrics=(shared[::-1] if worker % 2 else shared) + own
        ).points_inserted

    with ThreadPoolExecutor(max_workers=4) as pool:
        inserted = sum(pool.map(send, range(6)))
    assert inserted == 506 == MetricPoint.objects.filter(run=run).count()
    acc = MetricSummary.objects.get(run=run, key__name="acc")
    f1 = MetricSummary.objects.get(run=run, key__name="f1")
    assert (acc.count, acc.last_step, acc.min_value, acc.max_value) == (256, 10_005, 0.0, 0.5)
    assert (f1.count, f1.last_step, f1.min_value, f1.max_value) == (250, 249, 0.0, 0.249)


def test_concurrent_audited_writes_form_one_unbroken_chain(postgres, contributor):
    @_in_thread
    def make(index: int) -> None:
        create_experiment(actor=contributor, name=f"parallel-{index}")

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(make, range(20)))
    seal_events()  # writers leave events unsealed; the sealer links them after commit
    report = verify_chain()
    assert report.ok and report.checked >= 20


def test_tags_and_metrics_logged_to_one_run_at_once_never_deadlock(postgres, contributor, run):
    """A tag batch locks the run and then appends to the audit chain; a metric batch appends to
    the chain and then, at COMMIT, has its deferred foreign keys share-lock the run. The run
    lock must not block those checks, or the two wait on each other (PostgreSQL: deadlock)."""

    @_in_thread
    def send(worker: int) -> int:
        for round_ in range(15):
            if worker % 2:
                log_batch(actor=contributor, run=run, tags=[TagInput(f"t{worker}", str(round_))])
            else:
                step = worker * 100 + round_
                log_batch(actor=contributor, run=run, metrics=[MetricInput(f"m{round_}", 1.0, step=step)])
        return worker

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert sorted(pool.map(send, range(4))) == [0, 1, 2, 3]
    assert MetricPoint.objects.filter(run=run).count() == 30
    assert verify_chain().ok


def test_alias_moves_and_new_model_tags_at_once_never_deadlock(postgres, contributor, run):
    """The same rule for the registry: an alias move locks its model, a new tag points at it."""
    model = create_registered_model(actor=contributor, name="churn")
    versions = [create_model_version(actor=contributor, model=model, run=run) for _ in range(2)]

    @_in_thread
    def send(worker: int) -> int:
        for round_ in range(15):
            if worker % 2:
                set_alias(actor=contributor, model=model, alias="champion", version=versions[round_ % 2])
            else:
                tag = TagInput(f"note-{worker}-{round_}", "x")
                set_registered_model_tag(actor=contributor, model=model, tag=tag)
        return worker

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert sorted(pool.map(send, range(4))) == [0, 1, 2, 3]
    assert model.tags.count() == 30
    assert verify_chain().ok
