"""Writes to the registry's catalog: models, versions and their tags, soft deletion and restore."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import unquote

from django.contrib.auth.models import User
from django.db import IntegrityError, connection, transaction
from django.db.models import Value
from django.db.models.functions import Greatest
from django.utils import timezone

from accounts.callers import in_statement, user_of
from accounts.permissions import grant_creator
from accounts.roles import Role, require_role, role_of
from config.exceptions import AlreadyExists, Conflict, InvalidInput, NotFound, PermissionDenied
from config.inputs import TagInput
from registry.models import (
    AliasHistory,
    Label,
    ModelAlias,
    ModelVersion,
    ModelVersionTag,
    PromotionPolicy,
    RegisteredModel,
    RegisteredModelTag,
    Stage,
)
from registry.permissions import Level, require_model_permission, require_version_permission
from registry.selectors import policy_for
from tracker.models import Lifecycle, LoggedModel, Run
from tracker.permissions import require_run_permission
from tracker.validation import validate_key, validate_text

from .events import named, record_registry_event
from .labels import lock_model, remove_aliases_of
from .promotions import close_pending_requests
from .version_insert import insert_named_version_with_event, insert_version, insert_version_with_event


class ProtectedLabelHeld(Conflict):
    """A deletion or rename refused because the model or version holds a protected label."""


MAX_MODEL_NAME_LENGTH = 250
VERSION_CREATED = "model_version.created"
MAX_REGISTRY_TAG_VALUE_LENGTH = 100_000


def _validated_model_name(name: Any, *, field: str = "name") -> str:
    """The name as given, spaces included (as for experiments): the client registers a version
    under exactly the name it created the model with."""
    name = validate_text(name, field=field, max_length=MAX_MODEL_NAME_LENGTH, allow_empty=False)
    if "/" in name or ":" in name or "@" in name:
        raise InvalidInput(f"{name!r} must not contain '/', ':' or '@'", field=field)
    return name


def _validated_tags(tags: Sequence[TagInput]) -> list[TagInput]:
    seen: set[str] = set()
    for index, tag in enumerate(tags):
        validate_key(tag.key, field=f"tags[{index}].key")
        validate_text(tag.value, field=f"tags[{index}].value", max_length=MAX_REGISTRY_TAG_VALUE_LENGTH)
        if tag.key in seen:
            raise InvalidInput(f"{tag.key!r} is given more than once", field=f"tags[{index}].key")
        seen.add(tag.key)
    return list(tags)


def _version_snapshot(version: ModelVersion, *, run_uuid: str = "") -> dict[str, Any]:
    """What a version is, for its events; `run_uuid` for a version whose run is not loaded."""
    return {
        "version": version.version,
        "run": run_uuid or version.run.uuid,
        "source": version.source,
        "stage": version.stage,
        "description": version.description,
        **({"logged_model": version.logged_model.model_id} if version.logged_model is not None else {}),
    }


def _created(version: ModelVersion, tags: Sequence[TagInput], *, run_uuid: str = "") -> dict[str, Any]:
    """A new version's event data: what it is, with the tags it was registered with."""
    return {**_version_snapshot(version, run_uuid=run_uuid), "tags": {t.key: t.value for t in tags}}


# Registered models ----------------------------------------------------------------------------


def create_registered_model(
    *, actor: User, name: str, description: str = "", tags: Sequence[TagInput] = ()
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
            grant_creator(actor=actor, obj=model)
            record_registry_event(
                actor=actor,
                action="registered_model.created",
                target=model,
                after={"name": name, "description": description, "tags": {t.key: t.value for t in tags}},
            )
    except IntegrityError as error:  # created concurrently
        raise AlreadyExists(f"registered model {name!r} already exists", field="name") from error
    return model


def update_registered_model(
    *, actor: User, model: RegisteredModel, description: str | None = None, new_name: str | None = None
) -> RegisteredModel:
    """Re-describe and/or rename a model in one transaction and one audit event."""
    require_model_permission(actor, model, Level.EDIT, action="Updating a registered model")
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
            if "name" in changes:
                lock_model(model)
                _require_name_may_leave(actor, model, doing="renamed", field="new_name")
            for field, value in changes.items():
                setattr(model, field, value)
            model.save(update_fields=[*changes, "updated_at"])
            action = "registered_model.renamed" if set(changes) == {"name"} else "registered_model.updated"
            record_registry_event(actor=actor, action=action, target=model, before=before, after=changes)
    except IntegrityError as error:  # renamed concurrently to the same name
        raise AlreadyExists(f"registered model {new_name!r} already exists", field="new_name") from error
    return model


def rename_registered_model(*, actor: User, model: RegisteredModel, name: str) -> RegisteredModel:
    return update_registered_model(actor=actor, model=model, new_name=name)


def _require_name_may_leave(actor: User, model: RegisteredModel, *, doing: str, field: str) -> None:
    """A model's name is what deployments resolve (`models:/name@production`) and what its
    reviewers know it by. It may not leave a model holding a protected label: the label would
    stop resolving, unreviewed. And only an admin may take it from a model with a promotion
    policy of its own: the policy stays with the model, and the name, registered again, would
    get the default one. Called with the model locked."""
    if held := _protected_holdings(model, model.versions.all()):
        raise ProtectedLabelHeld(
            f"registered model {model.name!r} cannot be {doing}: {'; '.join(held)}", field=field
        )
    if role_of(actor) < Role.ADMIN and PromotionPolicy.objects.filter(model=model).exists():
        raise PermissionDenied(
            f"registered model {model.name!r} has a promotion policy of its own: only an admin may rename "
            "or delete it",
            field=field,
        )


def _protected_holdings(model: RegisteredModel, versions: Any) -> list[str]:
    """What stops a deletion: each protected alias or stage held among `versions`."""
    policy = policy_for(model=model)
    held = [
        f"the protected alias {alias!r} points at version {number}"
        for alias, number in ModelAlias.objects.filter(model=model, version__in=versions)
        .order_by("alias")
        .values_list("alias", "version__version")
        if policy.protects(Label.alias(alias))
    ]
    if policy.protects(Label.stage(Stage.PRODUCTION)):
        held += [
            f"version {number} is in the protected stage 'Production'"
            for number in versions.filter(stage=Stage.PRODUCTION)
            .order_by("version")
            .values_list("version", flat=True)
        ]
    return held


def _retire_version(*, actor: User, version: ModelVersion, now: Any, reason: str) -> list[str]:
    """What deleting a version takes with it: its (unprotected) aliases, its open stage holding,
    its pending requests. The history rows stay; they only get an end."""
    aliases = remove_aliases_of(actor=actor, version=version)
    AliasHistory.objects.filter(version=version, removed_at__isnull=True).update(
        removed_at=now, removed_by=actor
    )
    # Its stage holding ended here, so its stage did too: a restored version is in no stage,
    # as its history says (the deletion's event keeps the stage it had).
    ModelVersion.all_objects.filter(pk=version.pk).update(stage=Stage.NONE)
    version.stage = Stage.NONE
    close_pending_requests(actor=actor, model=version.model, version=version, reason=reason)
    return aliases


def delete_registered_model(*, actor: User, model: RegisteredModel) -> None:
    """Hide a model and its versions (MLflow's delete); history, requests and reviews stay, and
    an admin can restore it. Refused while it holds a protected label."""
    require_model_permission(actor, model, Level.MANAGE, action="Deleting a registered model")
    if model.is_deleted:
        raise NotFound(f"registered model {model.name!r} is deleted", field="name")
    with transaction.atomic():
        lock_model(model)
        _require_name_may_leave(actor, model, doing="deleted", field="name")
        versions = model.versions.all()
        now = timezone.now()
        snapshots = [_version_snapshot(v) for v in versions.select_related("run", "logged_model")]
        aliases = dict(model.aliases.values_list("alias", "version__version"))
        for version in versions.select_related("model"):
            _retire_version(
                actor=actor, version=version, now=now, reason=f"registered model {model.name!r} was deleted"
            )
        versions.update(deleted_at=now, deleted_by=actor)
        model.deleted_at, model.deleted_by = now, actor
        model.save(update_fields=["deleted_at", "deleted_by", "updated_at"])
        record_registry_event(
            actor=actor,
            action="registered_model.deleted",
            target=model,
            before={"name": model.name, "versions": snapshots, "aliases": aliases},
        )


def restore_registered_model(*, actor: User, model: RegisteredModel) -> RegisteredModel:
    """Bring back a deleted model with the versions deleted with it; admins only."""
    require_role(actor, Role.ADMIN, action="Restoring a registered model")
    if not model.is_deleted:
        raise Conflict(f"registered model {model.name!r} is not deleted", field="name")
    if RegisteredModel.objects.filter(name=model.name).exists():
        raise AlreadyExists(
            f"registered model {model.name!r} cannot be restored: another model has that name now",
            field="name",
        )
    try:
        with transaction.atomic():
            lock_model(model)
            restored = ModelVersion.all_objects.filter(model=model, deleted_at=model.deleted_at)
            numbers = sorted(restored.values_list("version", flat=True))
            restored.update(deleted_at=None, deleted_by=None)
            model.deleted_at, model.deleted_by = None, None
            model.save(update_fields=["deleted_at", "deleted_by", "updated_at"])
            record_registry_event(
                actor=actor, action="registered_model.restored", target=model, after={"versions": numbers}
            )
    except IntegrityError as error:  # the name was taken concurrently
        raise AlreadyExists(
            f"registered model {model.name!r} cannot be restored: another model has that name now",
            field="name",
        ) from error
    return model


def _set_tag(*, actor: User, owner: RegisteredModel | ModelVersion, tag: TagInput, action: str) -> None:
    validate_key(tag.key, field="key")
    validate_text(tag.value, field="value", max_length=MAX_REGISTRY_TAG_VALUE_LENGTH)
    with transaction.atomic():
        existing = owner.tags.filter(key=tag.key).values_list("value", flat=True).first()
        owner.tags.update_or_create(key=tag.key, defaults={"value": tag.value})
        record_registry_event(
            actor=actor,
            action=action,
            target=owner,
            before={tag.key: existing} if existing is not None else None,
            after={tag.key: tag.value},
        )


def _delete_tag(*, actor: User, owner: RegisteredModel | ModelVersion, key: str, action: str) -> None:
    with transaction.atomic():
        tag = owner.tags.filter(key=key).first()
        if tag is None:
            raise NotFound(f"{owner._meta.verbose_name} {owner} has no tag {key!r}", field="key")
        tag.delete()
        record_registry_event(actor=actor, action=action, target=owner, before={key: tag.value})


def set_registered_model_tag(*, actor: User, model: RegisteredModel, tag: TagInput) -> None:
    require_model_permission(actor, model, Level.EDIT, action="Tagging a registered model")
    _set_tag(actor=actor, owner=model, tag=tag, action="registered_model.tag_set")


def delete_registered_model_tag(*, actor: User, model: RegisteredModel, key: str) -> None:
    require_model_permission(actor, model, Level.EDIT, action="Deleting a registered model tag")
    _delete_tag(actor=actor, owner=model, key=key, action="registered_model.tag_deleted")


# Model versions -------------------------------------------------------------------------------


def _insert_numbered_version(version: ModelVersion, number: int) -> None:
    """Save a new version under a number chosen by the caller (an importer keeping MLflow's).

    The model's row is locked first, as for a numbered-by-us version, so the check that the
    number is free and the insert cannot race another version of the same model.
    """
    RegisteredModel.objects.filter(pk=version.model_id).update(
        updated_at=timezone.now(), last_version=Greatest("last_version", Value(number))
    )
    # Deleted versions keep their numbers (as in MLflow): a number never names two versions.
    if ModelVersion.all_objects.filter(model_id=version.model_id, version=number).exists():
        raise AlreadyExists(
            f"registered model {version.model.name!r} has a version {number}", field="version"
        )
    version.version = number
    version.save(force_insert=True)


def create_model_version(
    *,
    actor: User,
    model: RegisteredModel,
    run: Run,
    source: str = "",
    description: str = "",
    tags: Sequence[TagInput] = (),
    logged_model: LoggedModel | None = None,
    run_link: str = "",
    number: int | None = None,
) -> ModelVersion:
    """Register a run's model (an MLflow 3 logged model, or a folder of the run) as the next
    version; the run is the version's evidence. `number` keeps the number a version had
    elsewhere (an importer's) instead of taking the next one."""
    require_model_permission(actor, model, Level.EDIT, action="Registering a model version")
    if number is not None and (type(number) is not int or number < 1):
        raise InvalidInput(f"{number!r} is not a positive version number", field="version")
    if run is None:
        raise InvalidInput("a model version must name the run that produced it", field="run_id")
    if run.lifecycle != Lifecycle.ACTIVE:
        raise InvalidInput(f"run {run.uuid} is deleted", field="run_id")
    # The run is the version's evidence: whoever puts it forward must be able to read it.
    require_run_permission(actor, run, Level.READ, action="Registering a model version from a run")
    if logged_model is not None and logged_model.source_run_id not in (None, run.pk):
        raise InvalidInput(
            f"logged model {logged_model.model_id} was logged by another run than {run.uuid}",
            field="model_id",
        )
    source = _validated_source(source) or (
        f"models:/{logged_model.model_id}" if logged_model is not None else f"{run.artifact_uri}/model"
    )
    description = validate_text(description, field="description", max_length=5000)
    run_link = validate_text(run_link, field="run_link", max_length=1000)
    tags = _validated_tags(tags)
    version = ModelVersion(
        model=model,
        version=0,  # numbered under the model's row lock (version_insert.py)
        run=run,
        source=source,
        logged_model=logged_model,
        run_link=run_link,
        description=description,
        created_by=actor,
    )
    if number is None and not tags and connection.vendor == "postgresql":
        # The common case, a whole transaction in one round trip (version_insert.py), which
        # numbers the version and puts its number in the event.
        after = named(version, _created(version, tags))
        insert_version_with_event(version, actor=actor, action=VERSION_CREATED, after=after)
        return version
    with transaction.atomic():
        if number is None:
            insert_version(version)
        else:
            _insert_numbered_version(version, number)
        ModelVersionTag.objects.bulk_create(
            [ModelVersionTag(version=version, key=t.key, value=t.value) for t in tags]
        )
        record_registry_event(
            actor=actor, action=VERSION_CREATED, target=version, after=_created(version, tags)
        )
    return version


def _validated_source(source: str) -> str:
    source = validate_text(source, field="source", max_length=1000)
    if ".." in re.split(r"[/\\]", unquote(source)):
        raise InvalidInput(f"{source!r} must not contain '..' path segments", field="source")
    return source


def create_model_version_from(
    *,
    actor: Any,
    model_name: str,
    run_id: str,
    find: Callable[[], tuple[RegisteredModel, Run, LoggedModel | None]],
    source: str = "",
    description: str = "",
    run_link: str = "",
    tags: Sequence[TagInput] = (),
) -> ModelVersion:
    """`create_model_version` for the model named `model_name`, as both APIs name it. `run_id` is
    the run where the request names it alone ("" where it names a logged model); `find` looks up
    the model, the run and any logged model (and refuses) in the caller's API's words. `actor`
    may be a `TokenCaller`, whose token the one statement then checks too (accounts.callers).

    Registering is what a training pipeline does after every run. On PostgreSQL a version named
    by run, without tags, is found, checked and written in one statement (version_insert.py),
    where the model's lookup, the run's and the write were three round trips. Anything else, and
    a version that statement did not write (a missing, deleted or forbidden model or run, a bad
    field), takes `find` and `create_model_version`, so every refusal and error is the checked
    path's own.
    """
    if run_id and not tags and connection.vendor == "postgresql":
        version = _written_by_name(
            actor=actor,
            model_name=model_name,
            run_id=run_id,
            source=source,
            description=description,
            run_link=run_link,
        )
        if version is not None:
            return version
    user = user_of(actor)  # looked up now, if the statement was to take its token
    model, run, logged_model = find()
    return create_model_version(
        actor=user,
        model=model,
        run=run,
        logged_model=logged_model,
        source=source,
        description=description,
        run_link=run_link,
        tags=tags,
    )


def _written_by_name(
    *, actor: Any, model_name: str, run_id: str, source: str, description: str, run_link: str
) -> ModelVersion | None:
    """The version the one statement wrote, or None where it wrote nothing (or a field is bad,
    which the checked path reports after its lookups, as always)."""
    caller = in_statement(actor)  # then the statement finds the creator by the token
    actor = caller or user_of(actor)
    try:
        version = ModelVersion(
            version=0,  # the statement puts in the number, and the source where this is empty
            source=_validated_source(source),
            run_link=validate_text(run_link, field="run_link", max_length=1000),
            description=validate_text(description, field="description", max_length=5000),
            created_by=None if caller else actor,
        )
    except InvalidInput:
        return None
    after = {"model": model_name, **_created(version, (), run_uuid=run_id)}
    written = insert_named_version_with_event(
        version, model_name=model_name, run_uuid=run_id, actor=actor, action=VERSION_CREATED, after=after
    )
    return version if written else None


def update_model_version(*, actor: User, version: ModelVersion, description: str) -> ModelVersion:
    require_version_permission(actor, version, Level.EDIT, action="Updating a model version")
    description = validate_text(description, field="description", max_length=5000)
    with transaction.atomic():
        before = version.description
        version.description = description
        version.save(update_fields=["description", "updated_at"])
        record_registry_event(
            actor=actor,
            action="model_version.updated",
            target=version,
            before={"description": before},
            after={"description": description},
        )
    return version


def delete_model_version(*, actor: User, version: ModelVersion) -> None:
    """Hide a version (MLflow's delete); its history, requests and reviews stay, pending requests
    are closed, and an admin can restore it. Refused while it holds a protected label."""
    require_version_permission(actor, version, Level.MANAGE, action="Deleting a model version")
    model = version.model
    if version.is_deleted:
        raise NotFound(
            f"version {version.version} of registered model {model.name!r} is deleted", field="version"
        )
    with transaction.atomic():
        lock_model(model)
        if held := _protected_holdings(model, ModelVersion.objects.filter(pk=version.pk)):
            raise ProtectedLabelHeld(
                f"version {version.version} of registered model {model.name!r} cannot be deleted: "
                + "; ".join(held),
                field="version",
            )
        now = timezone.now()
        before = _version_snapshot(version)  # with the stage it had
        aliases = _retire_version(
            actor=actor, version=version, now=now, reason=f"version {version.version} was deleted"
        )
        version.deleted_at, version.deleted_by = now, actor
        version.save(update_fields=["deleted_at", "deleted_by", "updated_at"])
        record_registry_event(
            actor=actor, action="model_version.deleted", target=version, before={**before, "aliases": aliases}
        )


def restore_model_version(*, actor: User, version: ModelVersion) -> ModelVersion:
    """Bring back a deleted version (without the aliases it lost); admins only."""
    require_role(actor, Role.ADMIN, action="Restoring a model version")
    if version.model.is_deleted:
        raise InvalidInput(f"restore registered model {version.model.name!r} first", field="name")
    if not version.is_deleted:
        raise Conflict(f"version {version.version} of {version.model.name!r} is not deleted", field="version")
    with transaction.atomic():
        version.deleted_at, version.deleted_by = None, None
        version.save(update_fields=["deleted_at", "deleted_by", "updated_at"])
        record_registry_event(actor=actor, action="model_version.restored", target=version)
    return version


def set_model_version_tag(*, actor: User, version: ModelVersion, tag: TagInput) -> None:
    require_version_permission(actor, version, Level.EDIT, action="Tagging a model version")
    _set_tag(actor=actor, owner=version, tag=tag, action="model_version.tag_set")


def delete_model_version_tag(*, actor: User, version: ModelVersion, key: str) -> None:
    require_version_permission(actor, version, Level.EDIT, action="Deleting a model version tag")
    _delete_tag(actor=actor, owner=version, key=key, action="model_version.tag_deleted")
