# Deleting an experiment deletes its runs, as MLflow does; restoring it restores those runs only.
# Runs of experiments deleted before this migration were left active and writable: they are
# deleted with their experiment now, so restoring it brings them back as it would have.

from django.db import migrations, models
from django.db.models.functions import Now


def delete_runs_of_deleted_experiments(apps, schema_editor):
    Run = apps.get_model("tracker", "Run")
    Run.objects.filter(experiment__lifecycle="deleted", lifecycle="active").update(
        lifecycle="deleted", deleted_with_experiment=True, updated_at=Now()
    )


def restore_runs_deleted_with_experiments(apps, schema_editor):
    Run = apps.get_model("tracker", "Run")
    Run.objects.filter(deleted_with_experiment=True).update(lifecycle="active", updated_at=Now())


class Migration(migrations.Migration):
    dependencies = [("tracker", "0015_uploads_unique_per_user")]

    operations = [
        migrations.AddField(
            model_name="run",
            name="deleted_with_experiment",
            field=models.BooleanField(db_default=False, default=False, editable=False),
        ),
        migrations.RunPython(delete_runs_of_deleted_experiments, restore_runs_deleted_with_experiments),
    ]
