"""Room on each page of the summary and rollup tables for updated rows (PostgreSQL only).

Every logged point updates its key's summary row and ten rollup rows in place. PostgreSQL can
write the new row version on the same page without touching the primary key index (a HOT
update) only when the page has room, and with the default fillfactor of 100 a page filled by
inserts has none: each update then adds an index entry and spreads the table. A fillfactor of
70 keeps 30% of each page for updates. It applies to pages written from now on; existing pages
keep their fill until rewritten (VACUUM FULL or pg_repack), which this migration does not do.
"""

from django.db import migrations

TABLES = ("tracker_metricsummary", "tracker_metricrollup")


def set_fillfactor(apps, schema_editor, value: int | None = 70) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        if value is None:
            schema_editor.execute(f"ALTER TABLE {table} RESET (fillfactor)")
        else:
            schema_editor.execute(f"ALTER TABLE {table} SET (fillfactor = {int(value)})")


def reset_fillfactor(apps, schema_editor) -> None:
    set_fillfactor(apps, schema_editor, None)


class Migration(migrations.Migration):
    dependencies = [
        ("tracker", "0009_dataset_input_tags"),
    ]

    operations = [migrations.RunPython(set_fillfactor, reset_fillfactor)]
