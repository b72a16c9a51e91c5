from django.db import migrations


def create_default_experiment(apps, schema_editor):
    Experiment = apps.get_model("tracker", "Experiment")
    Experiment.objects.get_or_create(id=0, defaults={"name": "Default"})


class Migration(migrations.Migration):
    dependencies = [("tracker", "0001_initial")]

    operations = [migrations.RunPython(create_default_experiment, migrations.RunPython.noop)]
