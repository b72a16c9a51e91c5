"""Moving aliases and stages. `move_label` is the only function that moves one, so the review
workflow stands in front of it for every path: browser, native API, MLflow API, commands."""

from __future__ import annotations

import re
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from accounts.roles import Role, require_role
from config.exceptions import InvalidInput, NotFound, PermissionDenied
from registry.models import (
    AliasHistory,
    Label,
    ModelAlias,
    ModelVersion,
    PromotionPolicy,
    PromotionRequest,
    RegisteredModel,
    Stage,
)
from registry.permissions import Level, require_model_permission
from registry.selectors import canonical_stage, policy_for
from tracker.validation import validate_text

from .events import record_registry_event

_ALIAS_PATTERN = re.compile(r"[\w\-]+")  # fullmatch: `$` would let a trailing newline by
_RESERVED_ALIAS = re.compile(r"latest|v\d+", re.IGNORECASE)


def validate_alias(alias: Any, *, field: str = "alias") -> str:
    alias = validate_text(alias, field=field, max_length=255, allow_empty=False)
    if not _ALIAS_PATTERN.fullmatch(alias):
        raise InvalidInput(f"{alias!r} may only contain letters, digits, '_' and '-'", field=field)
    if _RESERVED_ALIAS.fullmatch(alias):
        raise InvalidInput(f"{alias!r} is reserved ('latest' and 'v<number>' name versions)", field=field)
    return alias


def protected_label_message(*, model: RegisteredModel, label: Label) -> str:
    """The refusal every path gives for a direct move of a protected label: it names the label
    and where to ask for the move instead."""
    return (
        f"{label.name!r} is a protected {label.kind} of registered model {model.name!r}: it moves only "
        "through an approved promotion request; open one with POST /api/v1/promotion-requests or from "
        "the version's page"
    )


def _field(label: Label) -> str:
    return "alias" if label.kind == AliasHistory.Kind.ALIAS else "stage"


def lock_model(model: RegisteredModel) -> None:
    """Serialise label moves and reviews of one model. FOR NO KEY UPDATE, not FOR UPDATE: other
    rows point at the model, and their foreign-key checks at COMMIT must not wait for us
    (docs/architecture.md, "Concurrency and durability")."""
    RegisteredModel.all_objects.select_for_update(no_key=True).filter(pk=model.pk).first()


def move_label(
    *,
    actor: User,
    model: RegisteredModel,
    label: Label,
    version: ModelVersion | None,
    archive_existing_versions: bool = False,
    request: PromotionRequest | None = None,
) -> None:
    """Point an alias or stage at `version` (None removes the alias), recording history and audit.

    A label the model's policy protects moves only with the approved (or forced) `request` that
    allows it; the promotion services pass it, every direct path leaves it out and is refused.
    """
    if request is None:  # an approved request moves it on its reviewers' authority, not a grant's
        require_model_permission(actor, model, Level.EDIT, action="Moving an alias or stage")
    else:
        require_role(actor, Role.CONTRIBUTOR, action="Moving an alias or stage")
    if version is not None and version.model_id != model.pk:
        raise InvalidInput(f"version {version.version} belongs to another model", field="version")
    if request is None:
        policy = policy_for(model=model)
        left = _protected_stage_left(policy=policy, label=label, version=version)
        if left is not None and version is not None:
            raise PermissionDenied(
                f"version {version.version} holds {left.name!r}, a protected stage of registered model "
                f"{model.name!r}: it leaves it when an approved promotion request moves another version "
                "there, or by an admin's forced move",
                field="stage",
            )
        if policy.protects(label):
            raise PermissionDenied(protected_label_message(model=model, label=label), field=_field(label))
        lookalike = policy.lookalike_of(label.name) if label.kind == AliasHistory.Kind.ALIAS else None
        if version is not None and lookalike is not None:  # removing one set earlier stays allowed
            raise InvalidInput(
                f"{label.name!r} differs from the protected alias {lookalike!r} only in case; "
                f"use {lookalike!r}, which moves through a reviewed promotion request",
                field="alias",
            )
    with transaction.atomic():
        lock_model(model)
        now = timezone.now()
        if label.kind == AliasHistory.Kind.ALIAS:
            _move_alias(actor=actor, model=model, alias=label.name, version=version, now=now, request=request)
        else:
            _move_stage(
                actor=actor,
                model=model,
                stage=label.name,
                version=version,
                now=now,
                archive_existing_versions=archive_existing_versions,
                request=request,
            )
        RegisteredModel.all_objects.filter(pk=model.pk).update(updated_at=now)


def _protected_stage_left(
    *, policy: PromotionPolicy, label: Label, version: ModelVersion | None
) -> Label | None:
    """The protected stage this move takes `version` out of, if any: moving the holder out of
    Production changes who holds it as much as moving a version in does."""
    if label.kind != AliasHistory.Kind.STAGE or version is None or version.stage == label.name:
        return None
    current = Label.stage(version.stage)
    return current if policy.protects(current) else None


def _close_history(
    *, model: RegisteredModel, kind: str, name: str, version: ModelVersion, now: Any, actor: User
) -> None:
    AliasHistory.objects.filter(
        model=model, kind=kind, name=name, version=version, removed_at__isnull=True
    ).update(removed_at=now, removed_by=actor)


def _move_alias(
    *,
    actor: User,
    model: RegisteredModel,
    alias: str,
    version: ModelVersion | None,
    now: Any,
    request: PromotionRequest | None,
) -> None:
    current = ModelAlias.objects.select_related("version").filter(model=model, alias=alias).first()
    before = {"alias": alias, "version": current.version.version if current else None}
    if version is None:
        if current is None:
            raise NotFound(f"registered model {model.name!r} has no alias {alias!r}", field="alias")
        _close_history(model=model, kind="alias", name=alias, version=current.version, now=now, actor=actor)
        current.delete()
        record_registry_event(actor=actor, action="model_alias.deleted", target=model, before=before)
        return
    if current is not None and current.version_id == version.pk:
        return
    if current is not None:
        _close_history(model=model, kind="alias", name=alias, version=current.version, now=now, actor=actor)
        current.version = version
        current.save(update_fields=["version", "updated_at"])
    else:
        ModelAlias.objects.create(model=model, alias=alias, version=version)
    AliasHistory.objects.create(
        model=model,
        kind="alias",
        name=alias,
        version=version,
        assigned_at=now,
        assigned_by=actor,
        request=request,
    )
    after: dict[str, Any] = {"alias": alias, "version": version.version, "run": version.run.uuid}
    if request is not None:
        after.update(request=request.pk, forced=request.forced)
    record_registry_event(actor=actor, action="model_alias.set", target=model, before=before, after=after)


def _set_version_stage(
    *,
    actor: User,
    model: RegisteredModel,
    version: ModelVersion,
    stage: str,
    now: Any,
    request: PromotionRequest | None,
) -> None:
    old_stage = version.stage
    if old_stage == stage:
        return
    if old_stage != Stage.NONE:
        _close_history(model=model, kind="stage", name=old_stage, version=version, now=now, actor=actor)
    if stage != Stage.NONE:
        AliasHistory.objects.create(
            model=model,
            kind="stage",
            name=stage,
            version=version,
            assigned_at=now,
            assigned_by=actor,
            request=request,
        )
    version.stage = stage
    version.save(update_fields=["stage", "updated_at"])
    after: dict[str, Any] = {"stage": stage}
    if request is not None:
        after.update(request=request.pk, forced=request.forced)
    record_registry_event(
        actor=actor,
        action="model_version.stage_changed",
        target=version,
        before={"stage": old_stage},
        after=after,
    )


def _move_stage(
    *,
    actor: User,
    model: RegisteredModel,
    stage: str,
    version: ModelVersion | None,
    now: Any,
    archive_existing_versions: bool,
    request: PromotionRequest | None,
) -> None:
    if stage not in Stage.values:
        raise InvalidInput(f"{stage!r} is not one of {', '.join(Stage.values)}", field="stage")
    if version is None:
        raise InvalidInput("a stage transition needs a version", field="version")
    if archive_existing_versions and stage in (Stage.STAGING, Stage.PRODUCTION):
        others = model.versions.filter(stage=stage).exclude(pk=version.pk).select_related("run", "model")
        for other in others:
            _set_version_stage(
                actor=actor, model=model, version=other, stage=Stage.ARCHIVED, now=now, request=request
            )
    _set_version_stage(actor=actor, model=model, version=version, stage=stage, now=now, request=request)


def remove_aliases_of(*, actor: User, version: ModelVersion) -> list[str]:
    """Take every (unprotected) alias off a version that is being deleted; returns their names."""
    names = list(version.aliases.order_by("alias").values_list("alias", flat=True))
    for name in names:
        _move_alias(
            actor=actor, model=version.model, alias=name, version=None, now=timezone.now(), request=None
        )
    return names


def set_alias(*, actor: User, model: RegisteredModel, alias: str, version: ModelVersion) -> None:
    move_label(actor=actor, model=model, label=Label.alias(validate_alias(alias)), version=version)


def delete_alias(*, actor: User, model: RegisteredModel, alias: str) -> None:
    move_label(actor=actor, model=model, label=Label.alias(alias), version=None)


def transition_stage(
    *, actor: User, version: ModelVersion, stage: str, archive_existing_versions: bool = False
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
