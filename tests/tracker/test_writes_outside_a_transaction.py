"""Metric writes outside any transaction, as a request makes them, on the real PostgreSQL.

Other tests run inside the test's transaction, where these paths join it: a lone point's BEGIN,
statement and COMMIT in one round trip, and a batch's COPY without a savepoint (a retried batch
aborts it and is stored again point by point).
"""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection

from audit.models import AuditEvent
from audit.sealing import seal_events
from audit.verification import verify_chain
from tests.factories import ExperimentFactory, RunFactory
from tracker.models import ExperimentKey, MetricPoint, MetricRollup, MetricSummary, Run
from tracker.services import MetricInput, log_batch, log_metric
from tracker.services.rollups import fold_stale_rollups


@pytest.fixture
def lone_run(postgres, contributor):
    return RunFactory(experiment=ExperimentFactory(name="lone"), user=contributor)


def test_a_point_and_its_event_are_committed_together(lone_run, contributor):
    assert not connection.in_atomic_block
    result = log_metric(actor=contributor, run=lone_run, point=MetricInput("loss", 0.5, step=3, timestamp=10))

    assert (result.points_received, result.points_inserted, result.metric_keys) == (1, 1, ("loss",))
    assert connection.connection.info.transaction_status.name == "IDLE"  # committed, not left open
    assert MetricPoint.objects.filter(run=lone_run, step=3).count() == 1
    assert MetricSummary.objects.get(run=lone_run).last_value == 0.5
    fold_stale_rollups()  # PostgreSQL's single point leaves its rollups to the fold
    assert MetricRollup.objects.filter(run=lone_run).count() == 10
    assert ExperimentKey.objects.filter(experiment=lone_run.experiment, kind="metric", key="loss").exists()
    event = AuditEvent.objects.get(action="run.batch_logged", object_id=lone_run.audit_id)
    assert event.actor_id == contributor.pk and event.actor_name == contributor.username
    assert event.after == {
        "metrics": {"received": 1, "inserted": 1, "keys": ["loss"]},
        "params": {},
        "tags": {},
    }
    seal_events()
    assert verify_chain().ok


def test_a_failed_statement_writes_nothing_and_leaves_the_connection_usable(lone_run, contributor):
    vanished = Run(pk=lone_run.pk + 1000, uuid="0" * 32, experiment_id=lone_run.experiment_id)
    vanished.lifecycle = lone_run.lifecycle
    events_before = AuditEvent.objects.count()

    with pytest.raises(DatabaseError, match="foreign key"):  # no such run
        log_metric(actor=contributor, run=vanished, point=MetricInput("loss", 0.5, step=1, timestamp=1))

    assert connection.connection.info.transaction_status.name == "IDLE"  # rolled back, not aborted
    assert AuditEvent.objects.count() == events_before
    assert not MetricSummary.objects.exists()
    assert not ExperimentKey.objects.filter(kind="metric").exists()
    # and the next point goes through on the same connection
    log_metric(actor=contributor, run=lone_run, point=MetricInput("loss", 0.25, step=2, timestamp=2))
    assert MetricPoint.objects.filter(run=lone_run).count() == 1


def test_a_retried_batch_aborts_its_copy_and_is_stored_again_point_by_point(lone_run, contributor):
    points = [MetricInput(f"k{i % 2}", float(i), step=i, timestamp=i) for i in range(60)]  # COPY-sized
    first = log_batch(actor=contributor, run=lone_run, metrics=points)
    retried_with_one_new = log_batch(
        actor=contributor, run=lone_run, metrics=[*points, MetricInput("k0", 0.5, step=100, timestamp=1)]
    )

    assert (first.points_inserted, retried_with_one_new.points_inserted) == (60, 1)
    assert MetricPoint.objects.filter(run=lone_run).count() == 61
    assert sorted(MetricSummary.objects.filter(run=lone_run).values_list("count", flat=True)) == [30, 31]
    events = AuditEvent.objects.filter(action="run.batch_logged", object_id=lone_run.audit_id)
    assert [event.after["metrics"]["inserted"] for event in events.order_by("sequence")] == [60, 1]
    assert connection.connection.info.transaction_status.name == "IDLE"
