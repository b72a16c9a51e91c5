"""config.db.fetch_together and for_each_id: several reads in one round trip on PostgreSQL, one
after another elsewhere, with the same rows either way."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection
from django.test.utils import CaptureQueriesContext

from config.db import fetch_together, for_each_id
from tests.factories import ExperimentFactory, RunFactory
from tracker.models import Param, Run

pytestmark = pytest.mark.django_db


def test_each_statements_rows_come_back_in_order(contributor):
    experiment = ExperimentFactory(name="reads")
    runs = [RunFactory(experiment=experiment, user=contributor) for _ in range(3)]
    pks = [run.pk for run in runs]
    table = Run._meta.db_table
    two = for_each_id(f"SELECT id FROM {table} WHERE {{ids}}", column="id", ids=[pks[1], pks[0]])
    none = for_each_id(f"SELECT id FROM {table} WHERE {{ids}}", column="id", ids=[-1])
    with CaptureQueriesContext(connection) as queries:
        first, second, empty = fetch_together(
            [two, (f"SELECT uuid FROM {table} WHERE id = %s", [pks[2]]), none]
        )
    assert sorted(first) == [(pks[0],), (pks[1],)]
    assert second == [(runs[2].uuid,)]
    assert empty == []
    assert len(queries) == 3


def test_a_failing_read_raises_and_the_connection_reads_on(postgres):
    """Outside a transaction, as a request reads: the pipeline's error is Django's, and the
    connection is not left in an aborted state."""
    with pytest.raises(DatabaseError, match="no_such_column"):
        fetch_together([("SELECT 1", []), ("SELECT no_such_column FROM tracker_run", [])])
    assert fetch_together([("SELECT 2", [])]) == [[(2,)]]


def test_each_id_is_read_by_an_index_lookup_on_a_table_never_analyzed_since_it_filled(postgres):
    """Migrations analyze the param table while it is empty; filled since, it was read by a
    sequential scan comparing every row with every id (`run_id = ANY(…)`). Each id now has its
    own lookup, planned for the table as it is."""
    experiment = ExperimentFactory(name="unanalyzed")
    runs = [RunFactory(experiment=experiment) for _ in range(100)]
    Param.objects.bulk_create(
        Param(run=run, key=f"p{i:02d}", value="x" * 40) for run in runs for i in range(40)
    )
    sql, params = for_each_id(
        f"SELECT run_id, key FROM {Param._meta.db_table} WHERE {{ids}}",
        column="run_id",
        ids=[run.pk for run in runs[:50]],
    )
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute(sql, params)
        assert len(cursor.fetchall()) == 50 * 40
    assert "Index" in plan and "Seq Scan on tracker_param" not in plan, plan
