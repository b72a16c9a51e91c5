"""A run's lifecycle: start, update, finish, delete, restore."""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from audit.services import record_event
from config.exceptions import AlreadyExists, InvalidInput
from config.inputs import TagInput
from tracker.models import Experiment, Lifecycle, Run, RunStatus, Tag
from tracker.permissions import Level, require_experiment_permission, require_run_permission
from tracker.validation import (
    MAX_RUN_NAME_LENGTH,
    MAX_TAG_VALUE_LENGTH,
    validate_json_document,
    validate_key,
    validate_text,
)

from .key_sets import record_keys

# The id a run keeps when it comes from elsewhere (an MLflow import): MLflow's 32 hex digits.
_RUN_UUID = re.compile(r"[0-9a-f]{32}")
TERMINAL_STATUSES = frozenset({RunStatus.FINISHED, RunStatus.FAILED, RunStatus.KILLED})
# MLflow keeps a run's name in this tag as well; where a run carries it, the two stay equal.
RUN_NAME_TAG = "mlflow.runName"
# How MLflow records a nested run's parent; set for a parent given any way, so the mlflow
# client's get_parent_run and `tags.mlflow.parentRunId = '…'` searches find every child.
PARENT_RUN_TAG = "mlflow.parentRunId"

_ADJECTIVES = (
    "amber", "bold", "brisk", "calm", "clever", "crisp", "daring", "eager", "gentle", "glad",
    "keen", "lucid", "merry", "nimble", "quiet", "rapid", "silent", "steady", "swift", "vivid",
)  # fmt: skip
_NOUNS = (
    "badger", "crane", "falcon", "fox", "heron", "ibis", "lynx", "marten", "moth", "newt",
    "otter", "owl", "panda", "quail", "raven", "seal", "swan", "tern", "wolf", "wren",
)  # fmt: skip


def generate_run_name() -> str:
    """A readable name for runs started without one, like MLflow's `adjective-noun-123`."""
    return f"{secrets.choice(_ADJECTIVES)}-{secrets.choice(_NOUNS)}-{secrets.randbelow(1000)}"


def _run_snapshot(run: Run) -> dict[str, Any]:
    return {
        "name": run.name,
        "status": run.status,
        "lifecycle": run.lifecycle,
        "end_time": run.end_time.isoformat() if run.end_time else None,
    }


def ensure_run_writable(run: Run) -> None:
    if run.lifecycle != Lifecycle.ACTIVE:
        raise InvalidInput(f"run {run.uuid} is deleted; restore it before logging to it", field="run_id")


def _require_experiment_still_active(experiment: Experiment) -> None:
    """Read the experiment's lifecycle again, under a lock its deletion waits for: a run made
    while the experiment is deleted would otherwise escape the deletion of its runs and stay
    writable. FOR SHARE, so runs started at once in one experiment do not wait for each other
    (SQLite writes one transaction at a time anyway)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT lifecycle FROM tracker_experiment WHERE id = %s FOR SHARE", [experiment.pk]
            )
            row = cursor.fetchone()
        lifecycle = row[0] if row else Lifecycle.DELETED
    else:
        lifecycle = Experiment.objects.filter(pk=experiment.pk).values_list("lifecycle", flat=True).first()
    if lifecycle != Lifecycle.ACTIVE:
        raise InvalidInput(f"experiment {experiment.pk} is deleted", field="experiment_id")


def start_run(
    *,
    actor: Any,
    experiment: Experiment,
    name: str = "",
    start_time: datetime | None = None,
    status: str = RunStatus.RUNNING,
    tags: Sequence[TagInput] = (),
    parent: Run | None = None,
    code_commit: str = "",
    source: str = "",
    environment: dict[str, Any] | None = None,
    run_id: str = "",
) -> Run:
    """Create a run in an active experiment; the run belongs to the authenticated actor.
    `run_id` keeps the id a run had elsewhere (an importer's); new runs get a fresh one."""
    require_experiment_permission(actor, experiment, Level.EDIT, action="Starting a run")
    if run_id:
        if not _RUN_UUID.fullmatch(run_id):
            raise InvalidInput(f"{run_id!r} is not 32 lowercase hex digits", field="run_id")
        if Run.objects.filter(uuid=run_id).exists():
            raise AlreadyExists(f"run {run_id} already exists", field="run_id")
    if experiment.lifecycle != Lifecycle.ACTIVE:
        raise InvalidInput(f"experiment {experiment.pk} is deleted", field="experiment_id")
    name = validate_text(name, field="run_name", max_length=MAX_RUN_NAME_LENGTH).strip()
    if status not in RunStatus.values:
        raise InvalidInput(f"{status!r} is not one of {', '.join(RunStatus.values)}", field="status")
    code_commit = validate_text(code_commit, field="code_commit", max_length=64)
    source = validate_text(source, field="source", max_length=1000)
    if environment is not None and not isinstance(environment, dict):
        raise InvalidInput("must be an object", field="environment")
    validate_json_document(environment, field="environment")
    tag_values: dict[str, str] = {}  # a key sent twice keeps its last value, as set_tags does
    for index, tag in enumerate(tags):
        validate_key(tag.key, field=f"tags[{index}].key")
        tag_values[tag.key] = validate_text(
            tag.value, field=f"tags[{index}].value", max_length=MAX_TAG_VALUE_LENGTH
        )
    # MLflow clients also name a run by the tag mlflow.runName (update_run and log_batch keep
    # it in step with the name): either may name the run, but not two different names.
    name_tag = tag_values.get(RUN_NAME_TAG, "").strip()
    if name and name_tag and name != name_tag:
        raise InvalidInput(
            f"run_name {name!r} and tag {RUN_NAME_TAG} {name_tag!r} differ; send one name", field="run_name"
        )
    name = name or name_tag or generate_run_name()
    if RUN_NAME_TAG in tag_values:
        tag_values[RUN_NAME_TAG] = name
    if parent is not None:
        parent_tag = tag_values.setdefault(PARENT_RUN_TAG, parent.uuid)
        if parent_tag != parent.uuid:  # the tag is what searches and the run page's links read
            raise InvalidInput(
                f"parent run {parent.uuid} and tag {PARENT_RUN_TAG} {parent_tag!r} differ; send one parent",
                field="parent_run_id",
            )
    with transaction.atomic():
        _require_experiment_still_active(experiment)
        run = Run(
            experiment=experiment,
            name=name,
            status=status,
            start_time=start_time or timezone.now(),
            user=actor,
            parent=parent,
            code_commit=code_commit,
            source=source,
            environment=environment or {},
            **({"uuid": run_id} if run_id else {}),
        )
        run.artifact_uri = f"mlflow-artifacts:/{experiment.pk}/{run.uuid}/artifacts"
        run.save()
        Tag.objects.bulk_create([Tag(run=run, key=key, value=value) for key, value in tag_values.items()])
        record_keys(experiment_id=experiment.pk, keys=[("tag", key) for key in tag_values])
        record_event(
            actor=actor,
            action="run.started",
            target=run,
            after={
                **_run_snapshot(run),
                "experiment": experiment.pk,
                "parent": parent.uuid if parent else None,
                "code_commit": code_commit,
                "tags": tag_values,
            },
        )
    return run


def update_run(
    *,
    actor: Any,
    run: Run,
    status: str | None = None,
    end_time: datetime | None = None,
    name: str | None = None,
) -> Run:
    """Change a run's status, end time or name; a terminal status without an end time ends it now."""
    require_run_permission(actor, run, Level.EDIT, action="Updating a run")
    if status is not None and status not in RunStatus.values:
        raise InvalidInput(f"{status!r} is not one of {', '.join(RunStatus.values)}", field="status")
    if name is not None:
        name = validate_text(
            name, field="run_name", max_length=MAX_RUN_NAME_LENGTH, allow_empty=False
        ).strip()
    with transaction.atomic():
        run = Run.objects.select_for_update(no_key=True).get(pk=run.pk)
        before = _run_snapshot(run)
        if status is not None:
            run.status = status
            if status in TERMINAL_STATUSES and end_time is None and run.end_time is None:
                end_time = timezone.now()
            if status not in TERMINAL_STATUSES:
                run.end_time = None
        if end_time is not None:
            if end_time < run.start_time:
                raise InvalidInput("must not be before the run's start time", field="end_time")
            run.end_time = end_time
        if name is not None:
            run.name = name
        after = _run_snapshot(run)
        if after != before:
            run.save(update_fields=["status", "end_time", "name", "updated_at"])
            if after["name"] != before["name"]:
                Tag.objects.filter(run=run, key=RUN_NAME_TAG).update(value=run.name)
            record_event(actor=actor, action="run.updated", target=run, before=before, after=after)
    return run


def finish_run(
    *, actor: Any, run: Run, status: str = RunStatus.FINISHED, end_time: datetime | None = None
) -> Run:
    if status not in TERMINAL_STATUSES:
        raise InvalidInput(
            f"a finished run's status is FINISHED, FAILED or KILLED, not {status!r}", field="status"
        )
    return update_run(actor=actor, run=run, status=status, end_time=end_time)


def _set_run_lifecycle(*, actor: Any, run: Run, lifecycle: str, action: str) -> Run:
    with transaction.atomic():
        run = Run.objects.select_for_update(no_key=True).select_related("experiment").get(pk=run.pk)
        if lifecycle == Lifecycle.ACTIVE and run.experiment.lifecycle != Lifecycle.ACTIVE:
            raise InvalidInput(
                f"run {run.uuid} is in deleted experiment {run.experiment.pk}; "
                "restoring the experiment restores its runs",
                field="run_id",
            )
        # A run its experiment's deletion took along, deleted again on its own, stays deleted
        # when the experiment is restored.
        if run.lifecycle != lifecycle or run.deleted_with_experiment:
            before = _run_snapshot(run)
            run.lifecycle = lifecycle
            run.deleted_with_experiment = False
            run.save(update_fields=["lifecycle", "deleted_with_experiment", "updated_at"])
            record_event(actor=actor, action=action, target=run, before=before, after=_run_snapshot(run))
    return run


def delete_run(*, actor: Any, run: Run) -> Run:
    """Soft-delete: hidden from searches, kept with its evidence, restorable."""
    require_run_permission(actor, run, Level.MANAGE, action="Deleting a run")
    return _set_run_lifecycle(actor=actor, run=run, lifecycle=Lifecycle.DELETED, action="run.deleted")


def restore_run(*, actor: Any, run: Run) -> Run:
    require_run_permission(actor, run, Level.MANAGE, action="Restoring a run")
    return _set_run_lifecycle(actor=actor, run=run, lifecycle=Lifecycle.ACTIVE, action="run.restored")
