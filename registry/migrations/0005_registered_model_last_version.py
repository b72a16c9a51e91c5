"""Each registered model keeps the highest number its versions have taken, so the statement that
numbers a new version reads it from the row it locks (registry/services/version_insert.py)."""

from django.db import migrations, models
from django.db.models import Max, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce


def count_existing_versions(apps, schema_editor):
    """Every model's highest version number so far, deleted versions included."""
    registered_model = apps.get_model("registry", "RegisteredModel")
    model_version = apps.get_model("registry", "ModelVersion")
    highest = (
        model_version._base_manager.filter(model=OuterRef("pk"))
        .values("model")
        .annotate(highest=Max("version"))
        .values("highest")
    )
    registered_model._base_manager.update(last_version=Coalesce(Subquery(highest), Value(0)))


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0004_permissions"),
    ]

    operations = [
        migrations.AddField(
            model_name="registeredmodel",
            name="last_version",
            field=models.PositiveIntegerField(default=0, editable=False),
        ),
        migrations.RunPython(count_existing_versions, migrations.RunPython.noop, elidable=True),
    ]
