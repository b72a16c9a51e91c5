"""Purging deleted runs for good: what goes, what is kept and why, the audit event, the command."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import check_chain
from config.exceptions import PermissionDenied
from registry.services import create_model_version, create_registered_model
from tracker.models import (
    Artifact,
    BulkUpload,
    DatasetInput,
    MetricPoint,
    MetricRollup,
    MetricSummary,
    Param,
    Run,
    Tag,
)
from tracker.services import (
    DatasetSpec,
    MetricInput,
    ParamInput,
    create_experiment,
    delete_run,
    log_batch,
    log_inputs,
    purge_deleted_runs,
    start_run,
    store_artifact,
)
from tracker.services.uploads import create_upload

pytestmark = pytest.mark.django_db

WEEK = timedelta(days=7)


@pytest.fixture
def experiment(contributor):
    return create_experiment(actor=contributor, name="sweep")


@pytest.fixture
def make_run(contributor, experiment):
    """`make_run(name, deleted_days_ago=None)`: a run with points, a param, a tag, a dataset and a
    file; deleted that many days ago when given."""

    def make(name: str, deleted_days_ago: float | None = None) -> Run:
        run = start_run(actor=contributor, experiment=experiment, name=name)
        log_batch(
            actor=contributor,
            run=run,
            metrics=[MetricInput("loss", 1.0 / (step + 1), step, 1) for step in range(3)],
            params=[ParamInput("lr", "0.1")],
        )
        log_inputs(actor=contributor, run=run, datasets=[DatasetSpec("digits", "d" * 64, "2.1")])
        store_artifact(actor=contributor, owner=run, path="model.bin", content=io.BytesIO(name.encode()))
        if deleted_days_ago is not None:
            delete_run(actor=contributor, run=run)
            deleted_at = timezone.now() - timedelta(days=deleted_days_ago)
            Run.objects.filter(pk=run.pk).update(updated_at=deleted_at)
        return Run.objects.get(pk=run.pk)

    return make


def rows_of(run: Run) -> dict[str, int]:
    return {
        model.__name__: model._base_manager.filter(run_id=run.pk).count()
        for model in (MetricPoint, MetricRollup, MetricSummary, Param, Tag, DatasetInput, Artifact)
    }


def test_a_run_deleted_long_enough_ago_goes_with_all_it_held(
    admin, make_run, django_capture_on_commit_callbacks
):
    old = make_run("old", deleted_days_ago=8)
    recent, active = make_run("recent", deleted_days_ago=2), make_run("active")
    storage, file_name = Artifact.objects.get(run=old).file.storage, Artifact.objects.get(run=old).file.name
    assert storage.exists(file_name) and rows_of(old)["MetricPoint"] == 3
    kept_rows = {run.uuid: rows_of(run) for run in (recent, active)}

    with django_capture_on_commit_callbacks(execute=True):
        report = purge_deleted_runs(actor=admin, older_than=WEEK)

    assert (report.purged, report.kept, report.points, report.files) == ([old.uuid], {}, 3, 1)
    assert not Run.objects.filter(pk=old.pk).exists()
    assert set(rows_of(old).values()) == {0}
    assert not storage.exists(file_name)
    assert {run.uuid: rows_of(run) for run in (recent, active)} == kept_rows
    event = AuditEvent.objects.get(action="run.purged")
    assert (event.actor_name, event.object_type, event.object_id) == (admin.username, "tracker.run", old.uuid)
    assert event.before["points"] == 3 and event.before["name"] == "old"
    assert event.before["files"] == [file_name]
    assert check_chain(full=True).ok


def test_a_run_a_model_version_names_is_kept_as_its_evidence(admin, contributor, make_run):
    evidence = make_run("evidence")
    model = create_registered_model(actor=contributor, name="digits")
    create_model_version(actor=contributor, model=model, run=evidence)
    delete_run(actor=contributor, run=evidence)
    Run.objects.filter(pk=evidence.pk).update(updated_at=timezone.now() - timedelta(days=30))

    report = purge_deleted_runs(actor=admin, older_than=WEEK)

    assert report.purged == [] and report.kept == {evidence.uuid: "a model version names it"}
    assert rows_of(evidence)["MetricPoint"] == 3
    assert not AuditEvent.objects.filter(action="run.purged").exists()


def test_a_finished_upload_goes_with_its_run_and_an_unfinished_one_keeps_it(
    admin, contributor, make_run, settings
):
    settings.CELERY_TASK_ALWAYS_EAGER = True  # the on_commit that queues the ingest never runs here
    finished, waiting = make_run("finished"), make_run("waiting")
    for run in (finished, waiting):
        content = io.BytesIO(b"key,step,value\nacc,0,1\n")
        create_upload(actor=contributor, content=content, file_name="m.csv", run=run)
        delete_run(actor=contributor, run=run)
    Run.objects.filter(pk__in=[finished.pk, waiting.pk]).update(
        updated_at=timezone.now() - timedelta(days=10)
    )
    BulkUpload.objects.filter(run=finished).update(status=BulkUpload.Status.DONE)

    report = purge_deleted_runs(actor=admin, older_than=WEEK)

    assert report.purged == [finished.uuid] and report.kept == {waiting.uuid: "a bulk upload names it"}
    assert report.files == 2  # the run's artifact and the uploaded file
    assert not BulkUpload.objects.filter(run_id=finished.pk).exists()
    assert BulkUpload.objects.filter(run=waiting).count() == 1


def test_a_dry_run_changes_nothing_and_says_what_would_go(admin, make_run):
    old = make_run("old", deleted_days_ago=40)
    before = rows_of(old)

    report = purge_deleted_runs(actor=admin, older_than=WEEK, dry_run=True)

    assert (report.purged, report.points, report.files) == ([old.uuid], 3, 1)
    assert rows_of(old) == before
    assert not AuditEvent.objects.filter(action="run.purged").exists()


def test_only_an_admin_may_purge(contributor, make_run):
    old = make_run("old", deleted_days_ago=40)
    with pytest.raises(PermissionDenied):
        purge_deleted_runs(actor=contributor, older_than=WEEK)
    assert Run.objects.filter(pk=old.pk).exists()


def test_the_command_purges_and_lists_what_it_kept(admin, contributor, make_run, capsys):
    old = make_run("old", deleted_days_ago=40)
    evidence = make_run("evidence")
    create_model_version(
        actor=contributor, model=create_registered_model(actor=contributor, name="m"), run=evidence
    )
    delete_run(actor=contributor, run=evidence)
    Run.objects.filter(pk=evidence.pk).update(updated_at=timezone.now() - timedelta(days=40))

    call_command("purge_deleted_runs", "--as", admin.username, "--older-than-days", "30", "--dry-run")
    assert Run.objects.filter(pk=old.pk).exists()
    call_command("purge_deleted_runs", "--as", admin.username, "--older-than-days", "30")

    out = capsys.readouterr().out
    assert "Would purge 1 run(s): 3 metric points, 1 files." in out
    assert "Purged 1 run(s): 3 metric points, 1 files." in out
    assert f"Kept {evidence.uuid}: a model version names it." in out
    assert not Run.objects.filter(pk=old.pk).exists()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--as", "nobody"], "No user named 'nobody'."),
        (["--as", "admin-user", "--older-than-days", "-1"], "--older-than-days must not be negative."),
    ],
)
def test_the_command_refuses_bad_input_and_purges_nothing(admin, make_run, arguments, message):
    old = make_run("old", deleted_days_ago=40)
    arguments = [admin.username if value == "admin-user" else value for value in arguments]
    with pytest.raises(CommandError, match=message):
        call_command("purge_deleted_runs", *arguments)
    assert Run.objects.filter(pk=old.pk).exists()


def test_the_command_as_a_contributor_is_refused_in_the_services_words(contributor, make_run):
    make_run("old", deleted_days_ago=40)
    with pytest.raises(CommandError, match="Purging deleted runs"):
        call_command("purge_deleted_runs", "--as", contributor.username)
