"""Creating, renaming, tagging, deleting and restoring experiments."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models.functions import Now

from accounts.permissions import grant_creator
from accounts.roles import Role, require_role
from audit.services import record_event
from config.exceptions import AlreadyExists, InvalidInput, NotFound
from config.inputs import TagInput
from tracker.models import DEFAULT_EXPERIMENT_ID, Experiment, ExperimentTag, Lifecycle, Run
from tracker.permissions import Level, require_experiment_permission
from tracker.validation import (
    MAX_EXPERIMENT_NAME_LENGTH,
    MAX_EXPERIMENT_TAG_VALUE_LENGTH,
    validate_key,
    validate_text,
)


def _validated_name(name: Any) -> str:
    """The name as given, spaces included: the mlflow client looks an experiment up by exactly the
    name it created it with (forms and the native API trim what people type before this)."""
    return validate_text(name, field="name", max_length=MAX_EXPERIMENT_NAME_LENGTH, allow_empty=False)


def _ensure_name_free(name: str, *, exclude_pk: int | None = None) -> None:
    clash = Experiment.objects.filter(name=name)
    if exclude_pk is not None:
        clash = clash.exclude(pk=exclude_pk)
    if clash.exists():
        raise AlreadyExists(f"an experiment named {name!r} already exists", field="name")


def create_experiment(
    *,
    actor: Any,
    name: str,
    description: str = "",
    artifact_location: str = "",
    tags: Sequence[TagInput] = (),
) -> Experiment:
    """Create an experiment; names are unique, including among deleted experiments (as in MLflow)."""
    require_role(actor, Role.CONTRIBUTOR, action="Creating an experiment")
    name = _validated_name(name)
    description = validate_text(description, field="description", max_length=20000)
    artifact_location = validate_text(artifact_location, field="artifact_location", max_length=1000)
    for index, tag in enumerate(tags):
        validate_key(tag.key, field=f"tags[{index}].key")
        validate_text(tag.value, field=f"tags[{index}].value", max_length=MAX_EXPERIMENT_TAG_VALUE_LENGTH)
    _ensure_name_free(name)
    try:
        with transaction.atomic():
            experiment = Experiment.objects.create(
                name=name, description=description, artifact_location=artifact_location or ""
            )
            ExperimentTag.objects.bulk_create(
                [ExperimentTag(experiment=experiment, key=t.key, value=t.value) for t in tags]
            )
            grant_creator(actor=actor, obj=experiment)
            record_event(
                actor=actor,
                action="experiment.created",
                target=experiment,
                after={"name": name, "tags": {t.key: t.value for t in tags}},
            )
    except IntegrityError as error:  # a concurrent create won the race for the name
        raise AlreadyExists(f"an experiment named {name!r} already exists", field="name") from error
    return experiment


def update_experiment(
    *, actor: Any, experiment: Experiment, name: str | None = None, description: str | None = None
) -> Experiment:
    """Rename and/or re-describe an experiment in one transaction and one audit event."""
    require_experiment_permission(actor, experiment, Level.EDIT, action="Updating an experiment")
    changes: dict[str, str] = {}
    if name is not None:
        name = _validated_name(name)
        if name != experiment.name:
            _ensure_name_free(name, exclude_pk=experiment.pk)
            changes["name"] = name
    if description is not None:
        description = validate_text(description, field="description", max_length=20000)
        if description != experiment.description:
            changes["description"] = description
    if not changes:
        return experiment
    before = {field: getattr(experiment, field) for field in changes}
    try:
        with transaction.atomic():
            for field, value in changes.items():
                setattr(experiment, field, value)
            experiment.save(update_fields=[*changes, "updated_at"])
            action = "experiment.renamed" if set(changes) == {"name"} else "experiment.updated"
            record_event(actor=actor, action=action, target=experiment, before=before, after=changes)
    except IntegrityError as error:  # renamed concurrently to the same name
        raise AlreadyExists(f"an experiment named {name!r} already exists", field="name") from error
    return experiment


def set_experiment_tag(*, actor: Any, experiment: Experiment, tag: TagInput) -> ExperimentTag:
    require_experiment_permission(actor, experiment, Level.EDIT, action="Tagging an experiment")
    validate_key(tag.key, field="key")
    validate_text(tag.value, field="value", max_length=MAX_EXPERIMENT_TAG_VALUE_LENGTH)
    with transaction.atomic():
        existing = ExperimentTag.objects.filter(experiment=experiment, key=tag.key).first()
        row, _ = ExperimentTag.objects.update_or_create(
            experiment=experiment, key=tag.key, defaults={"value": tag.value}
        )
        record_event(
            actor=actor,
            action="experiment.tag_set",
            target=experiment,
            before={tag.key: existing.value} if existing else None,
            after={tag.key: tag.value},
        )
    return row


def delete_experiment_tag(*, actor: Any, experiment: Experiment, key: str) -> None:
    """Remove an experiment tag; deleting a tag that does not exist is an error naming the key."""
    require_experiment_permission(actor, experiment, Level.EDIT, action="Deleting an experiment tag")
    validate_key(key, field="key")
    with transaction.atomic():
        tag = ExperimentTag.objects.filter(experiment=experiment, key=key).first()
        if tag is None:
            raise NotFound(f"experiment {experiment.pk} has no tag {key!r}", field="key")
        tag.delete()
        record_event(actor=actor, action="experiment.tag_deleted", target=experiment, before={key: tag.value})


def _set_lifecycle(*, actor: Any, experiment: Experiment, lifecycle: str, action: str) -> Experiment:
    """Delete or restore the experiment and, in the same transaction, its runs: deleting takes
    its active runs with it (MLflow does the same, so nothing more can be logged to them), and
    restoring brings back those runs only, not the ones deleted on their own before."""
    with transaction.atomic():
        # Locked and read afresh: two deletions at once must not both take the runs along.
        locked = Experiment.objects.select_for_update(no_key=True).filter(pk=experiment.pk)
        before = locked.values_list("lifecycle", flat=True).get()
        if before == lifecycle:
            experiment.lifecycle = lifecycle
            return experiment
        experiment.lifecycle = lifecycle
        experiment.save(update_fields=["lifecycle", "updated_at"])
        runs = Run.objects.filter(experiment=experiment)
        if lifecycle == Lifecycle.DELETED:
            runs_changed = runs.filter(lifecycle=Lifecycle.ACTIVE).update(
                lifecycle=Lifecycle.DELETED, deleted_with_experiment=True, updated_at=Now()
            )
        else:
            runs_changed = runs.filter(lifecycle=Lifecycle.DELETED, deleted_with_experiment=True).update(
                lifecycle=Lifecycle.ACTIVE, deleted_with_experiment=False, updated_at=Now()
            )
        record_event(
            actor=actor,
            action=action,
            target=experiment,
            before={"lifecycle": before},
            after={"lifecycle": lifecycle, "runs": runs_changed},
        )
    return experiment


def delete_experiment(*, actor: Any, experiment: Experiment) -> Experiment:
    """Soft-delete: the experiment and its runs disappear from lists but can be restored."""
    require_experiment_permission(actor, experiment, Level.MANAGE, action="Deleting an experiment")
    if experiment.pk == DEFAULT_EXPERIMENT_ID:
        raise InvalidInput("the default experiment cannot be deleted", field="experiment_id")
    return _set_lifecycle(
        actor=actor, experiment=experiment, lifecycle=Lifecycle.DELETED, action="experiment.deleted"
    )


def restore_experiment(*, actor: Any, experiment: Experiment) -> Experiment:
    """Bring back the experiment and the runs its deletion took with it."""
    require_experiment_permission(actor, experiment, Level.MANAGE, action="Restoring an experiment")
    return _set_lifecycle(
        actor=actor, experiment=experiment, lifecycle=Lifecycle.ACTIVE, action="experiment.restored"
    )
