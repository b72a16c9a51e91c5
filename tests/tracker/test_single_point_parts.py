"""single_point.statement_sql: the service's whole statement, and the part bench/writes.py
measures (without the audit event), each writing only its own rows."""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from config.db import execute_committed
from tracker.models import ExperimentKey, MetricPoint, MetricRollup, MetricSummary
from tracker.services.single_point import STATEMENT, statement_params, statement_sql

pytestmark = pytest.mark.usefixtures("postgres_statements")


def test_the_service_sends_the_whole_statement():
    assert statement_sql(event=True) == STATEMENT


@pytest.mark.parametrize("event", [True, False])
def test_each_part_stores_the_point_and_summary_and_only_what_it_keeps(contributor, run, event):
    after = {"metrics": {"received": 1, "inserted": 0, "keys": ["loss"]}, "params": {}, "tags": {}}
    params = statement_params(
        actor=contributor, run_uuid=run.uuid, key="loss", step=3, timestamp=5, value=0.5, is_nan=False,
        event_action="test.part", event_after=after,
    )  # fmt: skip
    assert execute_committed(statement_sql(event=event), params) == (1, 1, 1)
    assert MetricPoint.objects.filter(run=run).count() == 1
    summary = MetricSummary.objects.get(run=run, key__name="loss")
    assert (summary.count, summary.rollups_stale_from, summary.rollups_stale_to) == (1, 3, 3)
    assert ExperimentKey.objects.filter(experiment_id=run.experiment_id, kind="metric", key="loss").exists()
    assert not MetricRollup.objects.filter(run=run).exists()  # left to the fold
    events = AuditEvent.objects.filter(action="test.part")
    assert [e.after["metrics"]["inserted"] for e in events] == ([1] if event else [])
