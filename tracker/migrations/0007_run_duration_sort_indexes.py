from django.db import migrations

# The run table sorted by duration (end_time - start_time) sorted every matching run before
# its LIMIT: 126 ms for 8,372 matches of 100,000 (external merge on disk). These indexes hold
# the search's own ORDER BY after experiment and lifecycle (equalities in the query), so a page
# reads about its own rows in index order; one index per direction, because the tie-breakers
# (start_time DESC, uuid ASC) do not reverse with the duration. PostgreSQL only: on SQLite the
# expression is a Python function Django registers, which an index must not depend on, since
# other tools that open the file would then fail on every write to the table.
_INDEXES = {
    "run_duration_desc": "DESC NULLS LAST",
    "run_duration_asc": "ASC NULLS LAST",
}


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, order in _INDEXES.items():
        schema_editor.execute(
            f'CREATE INDEX IF NOT EXISTS "{name}" ON "tracker_run" '
            f'("experiment_id", "lifecycle", ("end_time" - "start_time") {order}, "start_time" DESC, "uuid")'
        )


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in _INDEXES:
        schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')


class Migration(migrations.Migration):
    dependencies = [
        ("tracker", "0006_metric_rollups"),
    ]

    operations = [migrations.RunPython(create_indexes, drop_indexes)]
