# Django gives every unique CharField on PostgreSQL a second index with varchar_pattern_ops, for
# LIKE 'prefix%' lookups. Nothing looks a hash up by prefix, and sealing writes each event's hash
# once: the pattern index was one more index entry per event, for nothing. (Django would make it
# again only if the field were altered.)
from django.db import migrations

FIND = """
SELECT indexname FROM pg_indexes
WHERE tablename = 'audit_auditevent' AND indexname LIKE 'audit_auditevent_hash_%%_like'
"""


def drop_pattern_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(FIND)
        for (name,) in cursor.fetchall():
            schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')


def restore_pattern_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "CREATE INDEX IF NOT EXISTS audit_auditevent_hash_d0c402da_like "
            "ON audit_auditevent (hash varchar_pattern_ops)"
        )


class Migration(migrations.Migration):
    dependencies = [("audit", "0005_sealed_chain")]

    operations = [migrations.RunPython(drop_pattern_index, restore_pattern_index)]
