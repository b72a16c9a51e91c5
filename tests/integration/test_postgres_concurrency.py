"""Concurrent writers on real PostgreSQL: row locks keep summaries exact and the chain whole."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections

from audit.verification import verify_chain
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


def test_concurrent_audited_writes_form_one_unbroken_chain(postgres, contributor):
    @_in_thread
    def make(index: int) -> None:
        create_experiment(actor=contributor, name=f"parallel-{index}")

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(make, range(20)))
    report = verify_chain()
    assert report.ok and report.checked >= 20
