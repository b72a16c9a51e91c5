"""Writes to the registry. Every alias or stage move goes through `move_label`, so the review
workflow can be put in front of that one function for every path (browser, API, mlflow client)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from accounts.roles import Role, require_role
from audit.services import record_event
from config.exceptions import AlreadyExists, InvalidInput, NotFound
from tracker.models import Lifecycle, LoggedModel, Run
from tracker.services import TagInput
from tracker.validation import validate_key, validate_text

from .models import (
    AliasHistory,
    ModelAlias,
    ModelVersion,
    ModelVersionTag,
    RegisteredModel,
    RegisteredModelTag,
    Stage,
)
from .selectors import canonical_stage

MAX_MODEL_NAME_LENGTH = 250
MAX_REGISTRY_TAG_VALUE_LENGTH = 100_000
_ALIAS_PATTERN = re.compile(r"^[\w\-]+$")
_RESERVED_ALIAS = re.compile(r"^(latest|v\d+)$", re.IGNORECASE)


@dataclass(frozen=True)
class Label:
    """Where a version is promoted to: an alias (`production`) or a legacy stage (`Staging`)."""

    kind: str  # AliasHistory.Kind
    name: str

    @classmethod
    def alias(cls, name: str) -> Label:
        return cls(AliasHistory.Kind.ALIAS, name)

    @classmethod
    def stage(cls, name: str) -> Label:
        return cls(AliasHistory.Kind.STAGE, name)


def _validated_model_name(name: Any, *, field: str = "name") -> str:
    name = validate_text(name, field=field, max_length=MAX_MODEL_NAME_LENGTH, allow_empty=False).strip()
    if "/" in name or ":" in name or "@" in name:
        raise InvalidInput(f"{name!r} must not contain '/', ':' or '@'", field=field)
    return name


def validate_alias(alias: Any, *, field: str = "alias") -> str:
    alias = validate_text(alias, field=field, max_length=255, allow_empty=False)
    if not _ALIAS_PATTERN.match(alias):
        raise InvalidInput(f"{alias!r} may only contain letters, digits, '_' and '-'", field=field)
    if _RESERVED_ALIAS.match(alias):
        raise InvalidInput(f"{alias!r} is reserved ('latest' and 'v<number>' name versions)", field=field)
    return alias


def _validated_tags(tags: Sequence[TagInput]) -> list[TagInput]:
    seen: set[str] = set()
    for index, tag in enumerate(tags):
        validate_key(tag.key, field=f"tags[{index}].key")
        validate_text(tag.value, field=f"tags[{index}].value", max_length=MAX_REGISTRY_TAG_VALUE_LENGTH)
        if tag.key in seen:
            raise InvalidInput(f"{tag.key!r} is given more than once", field=f"tags[{index}].key")
        seen.add(tag.key)
    return list(tags)


def _version_snapshot(version: ModelVersion) -> dict[str, Any]:
    return {
        "version": version.version,
        "run": version.run.uuid,
        "source": version.source,
        "stage": version.stage,
        "description": version.description,
        **({"logged_model": version.logged_model.model_id} if version.logged_model is not None else {}),
    }


# Registered models ----------------------------------------------------------------------------


def create_registered_model(
    *, actor: Any, name: str, description: str = "", tags: Sequence[TagInput] = ()
) -> RegisteredModel:
    require_role(actor, Role.CONTRIBUTOR, action="Registering a model")
    name = _validated_model_name(name)
    description = validate_text(description, field="description", max_length=5000)
    tags = _validated_tags(tags)
    if RegisteredModel.objects.filter(name=name).exists():
        raise AlreadyExists(f"registered model {name!r} already exists", field="name")
    try:
        with transaction.atomic():
            model = RegisteredModel.objects.create(name=name, description=description)
            RegisteredModelTag.objects.bulk_create(
                [RegisteredModelTag(model=model, key=t.key, value=t.value) for t in tags]
            )
            record_event(
                actor=actor,
                action="registered_model.created",
                target=model,
                after={"name": name, "description": description, "tags": {t.key: t.value for t in tags}},
            )
    except IntegrityError as error:  # created concurrently
        raise AlreadyExists(f"registered model {name!r} already exists", field="name") from error
    return model


def update_registered_model(
    *, actor: Any, model: RegisteredModel, description: str | None = None, new_name: str | None = None
) -> RegisteredModel:
    """Re-describe and/or rename a model in one transaction and one audit event."""
    require_role(actor, Role.CONTRIBUTOR, action="Updating a registered model")
    changes: dict[str, str] = {}
    if description is not None:
        description = validate_text(description, field="description", max_length=5000)
        if description != model.description:
            changes["description"] = description
    if new_name is not None:
        new_name = _validated_model_name(new_name, field="new_name")
        if new_name != model.name:
            if RegisteredModel.objects.filter(name=new_name).exists():
                raise AlreadyExists(f"registered model {new_name!r} already exists", field="new_name")
            changes["name"] = new_name
    if not changes:
        return model
    before = {field: getattr(model, field) for field in changes}
    try:
        with transaction.atomic():
            for field, value in changes.items():
                setattr(model, field, value)
            model.save(update_fields=[*changes, "updated_at"])
            action = "registered_model.renamed" if set(changes) == {"name"} else "registered_model.updated"
            record_event(actor=actor, action=action, target=model, before=before, after=changes)
    except IntegrityError as error:  # renamed concurrently to the same name
        raise AlreadyExists(f"registered model {new_name!r} already exists", field="new_name") from error
    return model


def rename_registered_model(*, actor: Any, model: RegisteredModel, name: str) -> RegisteredModel:
    return update_registered_model(actor=actor, model=model, new_name=name)


def delete_registered_model(*, actor: Any, model: RegisteredModel) -> None:
    """Remove a model with its versions and aliases; the audit trail keeps what they were."""
    require_role(actor, Role.CONTRIBUTOR, action="Deleting a registered model")
    with transaction.atomic():
        versions = [_version_snapshot(v) for v in model.versions.select_related("run", "logged_model")]
        aliases = dict(model.aliases.values_list("alias", "version__version"))
        record_event(
            actor=actor,
            action="registered_model.deleted",
            target=model,
            before={"name": model.name, "versions": versions, "aliases": aliases},
        )
        model.delete()


def _set_tag(*, actor: Any, owner: RegisteredModel | ModelVersion, tag: TagInput, action: str) -> None:
    validate_key(tag.key, field="key")
    validate_text(tag.value, field="value", max_length=MAX_REGISTRY_TAG_VALUE_LENGTH)
    with transaction.atomic():
        existing = owner.tags.filter(key=tag.key).values_list("value", flat=True).first()
        owner.tags.update_or_create(key=tag.key, defaults={"value": tag.value})
        record_event(
            actor=actor,
            action=action,
            target=owner,
            before={tag.key: existing} if existing is not None else None,
            after={tag.key: tag.value},
        )


def _delete_tag(*, actor: Any, owner: RegisteredModel | ModelVersion, key: str, action: str) -> None:
    with transaction.atomic():
        tag = owner.tags.filter(key=key).first()
        if tag is None:
            raise NotFound(f"{owner._meta.verbose_name} {owner} has no tag {key!r}", field="key")
        tag.delete()
        record_event(actor=actor, action=action, target=owner, before={key: tag.value})


def set_registered_model_tag(*, actor: Any, model: RegisteredModel, tag: TagInput) -> None:
    require_role(actor, Role.CONTRIBUTOR, action="Tagging a registered model")
    _set_tag(actor=actor, owner=model, tag=tag, action="registered_model.tag_set")


def delete_registered_model_tag(*, actor: Any, model: RegisteredModel, key: str) -> None:
    require_role(actor, Role.CONTRIBUTOR, action="Deleting a registered model tag")
    _delete_tag(actor=actor, owner=model, key=key, action="registered_model.tag_deleted")


# Model versions -------------------------------------------------------------------------------


def create_model_version(
    *,
    actor: Any,
    model: RegisteredModel,
    run: Run,
    source: str = "",
    description: str = "",
    tags: Sequence[TagInput] = (),
    logged_model: LoggedModel | None = None,
    run_link: str = "",
) -> ModelVersion:
    """Register a run's model (an MLflow 3 logged model, or a folder of the run) as the next
    version; the run is the version's evidence."""
    require_role(actor, Role.CONTRIBUTOR, action="Registering a model version")
    if run is None:
        raise InvalidInput("a model version must name the run that produced it", field="run_id")
    if run.lifecycle != Lifecycle.ACTIVE:
        raise InvalidInput(f"run {run.uuid} is deleted", field="run_id")
    if logged_model is not None and logged_model.source_run_id not in (None, run.pk):
        raise InvalidInput(
            f"logged model {logged_model.model_id} was logged by another run than {run.uuid}",
            field="model_id",
        )
    source = validate_text(source, field="source", max_length=1000) or (
        f"models:/{logged_model.model_id}" if logged_model is not None else f"{run.artifact_uri}/model"
    )
    if ".." in re.split(r"[/\\]", unquote(source)):
        raise InvalidInput(f"{source!r} must not contain '..' path segments", field="source")
    description = validate_text(description, field="description", max_length=5000)
    run_link = validate_text(run_link, field="run_link", max_length=1000)
    tags = _validated_tags(tags)
    with transaction.atomic():
        # Version numbers are per model and gap-free: the UPDATE that marks the model changed
        # also locks its row while the next number is picked.
        RegisteredModel.objects.filter(pk=model.pk).update(updated_at=timezone.now())
        number = (model.versions.aggregate(top=Max("version"))["top"] or 0) + 1
        version = ModelVersion.objects.create(
            model=model,
            version=number,
            run=run,
            source=source,
            logged_model=logged_model,
            run_link=run_link,
            description=description,
            created_by=actor,
        )
        ModelVersionTag.objects.bulk_create(
            [ModelVersionTag(version=version, key=t.key, value=t.value) for t in tags]
        )
        record_event(
            actor=actor,
            action="model_version.created",
            target=version,
            after={**_version_snapshot(version), "tags": {t.key: t.value for t in tags}},
        )
    return version


def update_model_version(*, actor: Any, version: ModelVersion, description: str) -> ModelVersion:
    require_role(actor, Role.CONTRIBUTOR, action="Updating a model version")
    description = validate_text(description, field="description", max_length=5000)
    with transaction.atomic():
        before = version.description
        version.description = description
        version.save(update_fields=["description", "updated_at"])
        record_event(
            actor=actor,
            action="model_version.updated",
            target=version,
            before={"description": before},
            after={"description": description},
        )
    return version


def delete_model_version(*, actor: Any, version: ModelVersion) -> None:
    require_role(actor, Role.CONTRIBUTOR, action="Deleting a model version")
    with transaction.atomic():
        aliases = list(version.aliases.values_list("alias", flat=True))
        now = timezone.now()
        AliasHistory.objects.filter(version=version, removed_at__isnull=True).update(
            removed_at=now, removed_by=actor if getattr(actor, "pk", None) else None
        )
        record_event(
            actor=actor,
            action="model_version.deleted",
            target=version,
            before={**_version_snapshot(version), "aliases": aliases},
        )
        version.delete()


def set_model_version_tag(*, actor: Any, version: ModelVersion, tag: TagInput) -> None:
    require_role(actor, Role.CONTRIBUTOR, action="Tagging a model version")
    _set_tag(actor=actor, owner=version, tag=tag, action="model_version.tag_set")


def delete_model_version_tag(*, actor: Any, version: ModelVersion, key: str) -> None:
    require_role(actor, Role.CONTRIBUTOR, action="Deleting a model version tag")
    _delete_tag(actor=actor, owner=version, key=key, action="model_version.tag_deleted")


# Aliases and stages ---------------------------------------------------------------------------


def move_label(
    *,
    actor: Any,
    model: RegisteredModel,
    label: Label,
    version: ModelVersion | None,
    archive_existing_versions: bool = False,
) -> None:
    """Point an alias or stage at `version` (None removes the alias), recording history and audit.

    This is the only function that moves an alias or a stage.
    """
    require_role(actor, Role.CONTRIBUTOR, action="Moving an alias or stage")
    if version is not None and version.model_id != model.pk:
        raise InvalidInput(f"version {version.version} belongs to another model", field="version")
    assigner = actor if getattr(actor, "pk", None) else None
    with transaction.atomic():
        # Two moves of the same model's labels must not interleave: lock the model row.
        RegisteredModel.objects.select_for_update(no_key=True).filter(pk=model.pk).first()
        now = timezone.now()
        if label.kind == AliasHistory.Kind.ALIAS:
            _move_alias(
                actor=actor, model=model, alias=label.name, version=version, now=now, assigner=assigner
            )
        else:
            _move_stage(
                actor=actor,
                model=model,
                stage=label.name,
                version=version,
                now=now,
                assigner=assigner,
                archive_existing_versions=archive_existing_versions,
            )
        RegisteredModel.objects.filter(pk=model.pk).update(updated_at=now)


def _close_history(*, model, kind, name, version, now, actor) -> None:
    AliasHistory.objects.filter(
        model=model, kind=kind, name=name, version=version, removed_at__isnull=True
    ).update(removed_at=now, removed_by=actor)


def _move_alias(*, actor, model, alias, version, now, assigner) -> None:
    current = ModelAlias.objects.select_related("version").filter(model=model, alias=alias).first()
    before = {"alias": alias, "version": current.version.version if current else None}
    if version is None:
        if current is None:
            raise NotFound(f"registered model {model.name!r} has no alias {alias!r}", field="alias")
        _close_history(
            model=model, kind="alias", name=alias, version=current.version, now=now, actor=assigner
        )
        current.delete()
        record_event(actor=actor, action="model_alias.deleted", target=model, before=before)
        return
    if current is not None and current.version_id == version.pk:
        return
    if current is not None:
        _close_history(
            model=model, kind="alias", name=alias, version=current.version, now=now, actor=assigner
        )
        current.version = version
        current.save(update_fields=["version", "updated_at"])
    else:
        ModelAlias.objects.create(model=model, alias=alias, version=version)
    AliasHistory.objects.create(
        model=model, kind="alias", name=alias, version=version, assigned_at=now, assigned_by=assigner
    )
    record_event(
        actor=actor,
        action="model_alias.set",
        target=model,
        before=before,
        after={"alias": alias, "version": version.version, "run": version.run.uuid},
    )


def _set_version_stage(*, actor, model, version, stage, now, assigner) -> None:
    old_stage = version.stage
    if old_stage == stage:
        return
    if old_stage != Stage.NONE:
        _close_history(model=model, kind="stage", name=old_stage, version=version, now=now, actor=assigner)
    if stage != Stage.NONE:
        AliasHistory.objects.create(
            model=model, kind="stage", name=stage, version=version, assigned_at=now, assigned_by=assigner
        )
    version.stage = stage
    version.save(update_fields=["stage", "updated_at"])
    record_event(
        actor=actor,
        action="model_version.stage_changed",
        target=version,
        before={"stage": old_stage},
        after={"stage": stage},
    )


def _move_stage(*, actor, model, stage, version, now, assigner, archive_existing_versions) -> None:
    if stage not in Stage.values:
        raise InvalidInput(f"{stage!r} is not one of {', '.join(Stage.values)}", field="stage")
    if version is None:
        raise InvalidInput("a stage transition needs a version", field="version")
    if archive_existing_versions and stage in (Stage.STAGING, Stage.PRODUCTION):
        others = model.versions.filter(stage=stage).exclude(pk=version.pk).select_related("run")
        for other in others:
            _set_version_stage(
                actor=actor, model=model, version=other, stage=Stage.ARCHIVED, now=now, assigner=assigner
            )
    _set_version_stage(actor=actor, model=model, version=version, stage=stage, now=now, assigner=assigner)


def set_alias(*, actor: Any, model: RegisteredModel, alias: str, version: ModelVersion) -> None:
    move_label(actor=actor, model=model, label=Label.alias(validate_alias(alias)), version=version)


def delete_alias(*, actor: Any, model: RegisteredModel, alias: str) -> None:
    move_label(actor=actor, model=model, label=Label.alias(alias), version=None)


def transition_stage(
    *, actor: Any, version: ModelVersion, stage: str, archive_existing_versions: bool = False
) -> ModelVersion:
    stage = canonical_stage(stage)
    move_label(
        actor=actor,
        model=version.model,
        label=Label.stage(stage),
        version=version,
        archive_existing_versions=archive_existing_versions,
    )
    version.refresh_from_db()
    return version
