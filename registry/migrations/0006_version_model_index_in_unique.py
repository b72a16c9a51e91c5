"""A version's model has no index of its own: `model_version_unique` (model, version) leads with it
and serves every lookup by model, so each registration wrote one index entry too many.

Only the index goes. Django's own operation for `db_index=False` would also drop and re-add the
foreign key, checking every version again; the index's name is the one Django gave it in 0001,
the same on PostgreSQL and SQLite.
"""

import django.db.models.deletion
from django.db import migrations, models

INDEX = "registry_modelversion_model_id_bed9c39a"


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0005_registered_model_last_version"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="modelversion",
                    name="model",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="versions",
                        to="registry.registeredmodel",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    sql=f'DROP INDEX IF EXISTS "{INDEX}"',
                    reverse_sql=f'CREATE INDEX "{INDEX}" ON "registry_modelversion" ("model_id")',
                ),
            ],
        ),
    ]
