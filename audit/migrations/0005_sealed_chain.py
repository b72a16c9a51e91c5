from django.conf import settings
from django.db import migrations, models

# Writers take their sequence through audit_next_sequence(): it first holds a shared advisory
# lock keyed by the sequence's current value (a floor no lower than the number it then hands
# out), so the sealer can see, in pg_locks, the lowest number a running writer may still
# commit (audit/sealing.py). The key's first half must equal audit.sealing.WRITER_LOCK_KEY.
POSTGRES_FORWARD = """
CREATE SEQUENCE audit_event_sequence;
SELECT setval('audit_event_sequence', max(sequence)) FROM audit_auditevent HAVING max(sequence) > 0;
CREATE FUNCTION audit_next_sequence() RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    floor bigint;
BEGIN
    SELECT last_value INTO floor FROM audit_event_sequence;
    PERFORM pg_advisory_xact_lock_shared(1280065879, mod(floor, 2147483648)::integer);
    RETURN nextval('audit_event_sequence');
END
$$;
"""
POSTGRES_BACKWARD = """
DROP FUNCTION audit_next_sequence();
DROP SEQUENCE audit_event_sequence;
"""


def create_sequence(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_FORWARD)


def drop_sequence(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_BACKWARD)


def mark_existing_sealed(apps, schema_editor):
    """Events written before this migration were hashed as they were written."""
    table = apps.get_model("audit", "AuditEvent")._meta.db_table
    schema_editor.execute(f"UPDATE {table} SET sealed_at = created_at WHERE hash IS NOT NULL")


class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0004_search_indexes'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='auditevent',
            name='sealed_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name='auditevent',
            name='hash',
            field=models.CharField(blank=True, max_length=64, null=True, unique=True),
        ),
        migrations.AlterField(
            model_name='auditevent',
            name='previous_hash',
            field=models.CharField(blank=True, max_length=64, null=True),
        ),
        migrations.AddIndex(
            model_name='auditevent',
            index=models.Index(condition=models.Q(('hash__isnull', True)), fields=['sequence'], name='audit_event_unsealed'),
        ),
        migrations.RunPython(create_sequence, drop_sequence),
        migrations.RunPython(mark_existing_sealed, migrations.RunPython.noop),
    ]
