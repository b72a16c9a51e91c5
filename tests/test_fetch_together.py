"""config.db.fetch_together and any_of: several reads in one round trip on PostgreSQL, one after
another elsewhere, with the same rows either way."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection
from django.test.utils import CaptureQueriesContext

from config.db import any_of, fetch_together
from tests.factories import ExperimentFactory, RunFactory
from tracker.models import Run

pytestmark = pytest.mark.django_db


def test_each_statements_rows_come_back_in_order(contributor):
    experiment = ExperimentFactory(name="reads")
    runs = [RunFactory(experiment=experiment, user=contributor) for _ in range(3)]
    pks = [run.pk for run in runs]
    two, two_params = any_of("id", pks[:2])
    none, none_params = any_of("id", [-1])
    table = Run._meta.db_table
    with CaptureQueriesContext(connection) as queries:
        first, second, empty = fetch_together(
            [
                (f"SELECT id FROM {table} WHERE {two} ORDER BY id", two_params),
                (f"SELECT uuid FROM {table} WHERE id = %s", [pks[2]]),
                (f"SELECT id FROM {table} WHERE {none}", none_params),
            ]
        )
    assert first == [(pks[0],), (pks[1],)]
    assert second == [(runs[2].uuid,)]
    assert empty == []
    assert len(queries) == 3


def test_a_failing_read_raises_and_the_connection_reads_on(postgres):
    """Outside a transaction, as a request reads: the pipeline's error is Django's, and the
    connection is not left in an aborted state."""
    with pytest.raises(DatabaseError, match="no_such_column"):
        fetch_together([("SELECT 1", []), ("SELECT no_such_column FROM tracker_run", [])])
    assert fetch_together([("SELECT 2", [])]) == [[(2,)]]
