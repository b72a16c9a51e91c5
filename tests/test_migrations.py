import importlib
from io import StringIO

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_models_and_migrations_agree():
    out = StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


@pytest.mark.django_db
def test_runs_left_active_in_experiments_deleted_before_0016_are_deleted_with_them(contributor):
    """Before 0016 an experiment's deletion left its runs active and writable; the migration
    deletes them with the experiment, and its reverse brings back exactly those."""
    from django.apps import apps

    from tests.factories import ExperimentFactory, RunFactory

    migration = importlib.import_module("tracker.migrations.0016_run_deleted_with_experiment")
    gone = ExperimentFactory(name="gone", lifecycle="deleted")
    left_active = RunFactory(experiment=gone, user=contributor)
    deleted_alone = RunFactory(experiment=gone, user=contributor, lifecycle="deleted")
    live = RunFactory(experiment=ExperimentFactory(name="live"), user=contributor)

    migration.delete_runs_of_deleted_experiments(apps, None)
    assert _lifecycles(left_active, deleted_alone, live) == [
        ("deleted", True),
        ("deleted", False),
        ("active", False),
    ]

    migration.restore_runs_deleted_with_experiments(apps, None)
    assert [lifecycle for lifecycle, _ in _lifecycles(left_active, deleted_alone, live)] == [
        "active",
        "deleted",
        "active",
    ]


def _lifecycles(*runs):
    from tracker.models import Run

    found = dict(Run.objects.values_list("pk", "lifecycle"))
    flags = dict(Run.objects.values_list("pk", "deleted_with_experiment"))
    return [(found[run.pk], flags[run.pk]) for run in runs]
