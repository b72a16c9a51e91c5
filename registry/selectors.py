"""Reads of the registry: models, versions, aliases and their history."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from config.exceptions import InvalidInput, NotFound

from .models import AliasHistory, ModelAlias, ModelVersion, RegisteredModel


def list_registered_models() -> QuerySet[RegisteredModel]:
    return RegisteredModel.objects.annotate(version_count=Count("versions", distinct=True)).prefetch_related(
        "aliases__version", "tags"
    )


def get_registered_model(*, name: str) -> RegisteredModel:
    model = RegisteredModel.objects.filter(name=name).first()
    if model is None:
        raise NotFound(f"registered model {name!r} does not exist", field="name")
    return model


def list_model_versions(*, model: RegisteredModel) -> QuerySet[ModelVersion]:
    return (
        model.versions.select_related("run", "run__experiment", "created_by")
        .prefetch_related("aliases", "tags")
        .order_by("-version")
    )


def get_model_version(*, model: RegisteredModel, version: int | str) -> ModelVersion:
    try:
        number = int(version)
    except (TypeError, ValueError):
        raise InvalidInput(f"{version!r} is not a version number", field="version") from None
    found = (
        ModelVersion.objects.select_related("model", "run", "run__experiment")
        .filter(model=model, version=number)
        .first()
    )
    if found is None:
        raise NotFound(f"registered model {model.name!r} has no version {version}", field="version")
    return found


def get_version_by_alias(*, model: RegisteredModel, alias: str) -> ModelVersion:
    found = (
        ModelAlias.objects.select_related("version__run", "version__model")
        .filter(model=model, alias=alias)
        .first()
    )
    if found is None:
        raise NotFound(f"registered model {model.name!r} has no alias {alias!r}", field="alias")
    return found.version


def alias_history(*, model: RegisteredModel) -> QuerySet[AliasHistory]:
    return model.alias_history.select_related("version", "assigned_by", "removed_by").order_by(
        "-assigned_at", "-pk"
    )
