from django.db import migrations

# PostgreSQL only, both parts (see docs/architecture.md, "The run table at 100,000 runs").
#
# Duration sorts: the run table sorted by end_time - start_time sorted every matching run
# before its LIMIT (126 ms for 8,372 matches of 100,000, an external merge on disk). These
# indexes hold the search's own ORDER BY after experiment and lifecycle (equalities in the
# query), so a page reads about its own rows in index order; one per direction, because the
# tie-breakers (start_time DESC, uuid ASC) do not reverse with the duration. On SQLite the
# expression is a Python function Django registers, which an index must not depend on: other
# tools that open the file would fail on every write to the table.
#
# Value-prefix statistics: `params.k = 'v'` (or a tag's) tests left(value, 200) = 'v', which the
# (key, left(value, 200), run) index answers, and value = 'v'. Taking them as independent, the
# planner expected a third of the rows (11,223 of 33,334 for `tags.team = 'nlp'`) and chose
# nested loops of index probes: the count of `tags.team = 'nlp' and params.p03 IN (…)` took
# 237 ms instead of 119 ms. Functional-dependency statistics (PostgreSQL 14+, on expressions)
# tell it the prefix follows from the value.
_CREATE = [
    'CREATE INDEX IF NOT EXISTS "run_duration_desc" ON "tracker_run" ("experiment_id", "lifecycle", '
    '("end_time" - "start_time") DESC NULLS LAST, "start_time" DESC, "uuid")',
    'CREATE INDEX IF NOT EXISTS "run_duration_asc" ON "tracker_run" ("experiment_id", "lifecycle", '
    '("end_time" - "start_time") ASC NULLS LAST, "start_time" DESC, "uuid")',
    'CREATE STATISTICS IF NOT EXISTS "param_value_prefix_stats" (dependencies) '
    'ON value, (left(value, 200)) FROM "tracker_param"',
    'CREATE STATISTICS IF NOT EXISTS "tag_value_prefix_stats" (dependencies) '
    'ON value, (left(value, 200)) FROM "tracker_tag"',
    'ANALYZE "tracker_param"',  # statistics objects are empty until the next ANALYZE
    'ANALYZE "tracker_tag"',
]
_DROP = [
    'DROP INDEX IF EXISTS "run_duration_desc"',
    'DROP INDEX IF EXISTS "run_duration_asc"',
    'DROP STATISTICS IF EXISTS "param_value_prefix_stats"',
    'DROP STATISTICS IF EXISTS "tag_value_prefix_stats"',
]


def _on_postgresql(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            for statement in statements:
                schema_editor.execute(statement, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("tracker", "0007_bulk_uploads"),
    ]

    operations = [migrations.RunPython(_on_postgresql(_CREATE), _on_postgresql(_DROP))]
