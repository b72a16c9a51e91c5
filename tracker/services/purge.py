"""Removing deleted runs for good, as `mlflow gc` does for an MLflow server.

Deleting a run only marks it (it can be restored), so its points, rows and files stay where they
were. `purge_deleted_runs` removes the runs deleted at least `older_than` ago with everything
they hold: points, rollups, summaries, params, tags, dataset inputs, artifacts (their files
too) and the finished uploads that filled them. A run something else still names is kept and
reported instead: a registry version's evidence, the run that logged an MLflow 3 model, an
upload still being ingested. Whatever protects a run from deletion in the data model protects it
here, so a new such reference keeps runs without a change here. Each purged run leaves an audit
event that says what it held, so the trail still shows the run existed, and who purged it when.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.db import models, transaction
from django.db.models.fields.files import FieldFile
from django.utils import timezone

from accounts.roles import Role, require_role
from audit.services import record_event
from tracker.models import Artifact, BulkUpload, Lifecycle, MetricPoint, MetricRollup, Run

RUN_PURGED = "run.purged"


@dataclass
class PurgeReport:
    purged: list[str] = field(default_factory=list)  # run ids
    kept: dict[str, str] = field(default_factory=dict)  # run id: what still names it
    points: int = 0
    files: int = 0


def _still_named_by(run: Run) -> str:
    """What keeps `run` from being deleted (its PROTECT references), in words; "" if nothing."""
    for relation in run._meta.related_objects:
        model = relation.related_model
        if relation.on_delete is not models.PROTECT or not isinstance(model, type):
            continue
        related = model._base_manager.filter(**{relation.field.name: run})
        if model is BulkUpload:  # finished uploads go with the run
            related = related.exclude(status__in=[BulkUpload.Status.DONE, BulkUpload.Status.FAILED])
        if related.exists():
            return f"a {model._meta.verbose_name} names it"
    return ""


def _delete_files(storage: Any, names: list[str]) -> None:
    for name in names:
        storage.delete(name)


def _files_of(run: Run) -> list[FieldFile]:
    """The stored files a purge removes: the run's artifacts and its uploads' files."""
    files = [artifact.file for artifact in Artifact.objects.filter(run=run)]
    return files + [upload.file for upload in BulkUpload.objects.filter(run=run)]


def _purge_run(actor: Any, run: Run, files: list[FieldFile]) -> int:
    """Delete the run and what it holds, in the caller's transaction; return its points' count.
    Its `files` leave storage once the rows are gone for good, after the commit."""
    points = MetricPoint.objects.filter(run_id=run.pk).delete()[0]  # nothing cascades: one DELETE
    MetricRollup.objects.filter(run_id=run.pk).delete()
    BulkUpload.objects.filter(run=run).delete()  # only finished ones are left (_still_named_by)
    record_event(
        actor=actor,
        action=RUN_PURGED,
        target=run,
        before={
            "name": run.name,
            "experiment": run.experiment_id,
            "deleted_at": run.updated_at.isoformat(),
            "points": points,
            "files": [file.name for file in files],
        },
    )
    run.delete()  # params, tags, summaries, dataset inputs, model links, artifact rows
    for storage in {file.storage for file in files}:
        names = [file.name for file in files if file.storage is storage and file.name]
        transaction.on_commit(partial(_delete_files, storage, names))
    return points


def purge_deleted_runs(
    *, actor: Any, older_than: timedelta, dry_run: bool = False, now: datetime | None = None
) -> PurgeReport:
    """Purge the runs deleted at least `older_than` before `now`, each in its own transaction (a
    run restored meanwhile is left alone); with `dry_run`, only report what would go. Admins only:
    nothing purged can be restored."""
    require_role(actor, Role.ADMIN, action="Purging deleted runs")
    cutoff = (now or timezone.now()) - older_than
    report = PurgeReport()
    # A deleted run cannot be written to, so its updated_at is when it was deleted.
    candidates = Run.objects.filter(lifecycle=Lifecycle.DELETED, updated_at__lte=cutoff)
    for run_pk in list(candidates.order_by("pk").values_list("pk", flat=True)):
        with transaction.atomic():
            # Read again under a lock: restored (or restored and deleted again) since, it stays.
            run = candidates.select_for_update().filter(pk=run_pk).first()
            if run is None:
                continue
            reason = _still_named_by(run)
            if reason:
                report.kept[run.uuid] = reason
                continue
            report.purged.append(run.uuid)
            files = _files_of(run)
            if dry_run:
                report.points += MetricPoint.objects.filter(run_id=run.pk).count()
            else:
                report.points += _purge_run(actor, run, files)
            report.files += len(files)
    return report
