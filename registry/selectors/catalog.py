"""Reads of the registry: models, versions, aliases and their history, and the MLflow-style
search over models and versions (its filters and order compiled by registry.search)."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.db.models.functions import Lower

from accounts.permissions import get_with_grant, require_readable
from config.exceptions import InvalidInput, NotFound
from config.inputs import TagInput
from config.listing import Orders, containing_text, ordered
from registry import search
from registry.models import (
    AliasHistory,
    ModelAlias,
    ModelVersion,
    ModelVersionTag,
    RegisteredModel,
    RegisteredModelTag,
    Stage,
)
from registry.permissions import model_named, readable_models_q
from tracker.models import Lifecycle, LoggedModel, Run
from tracker.search import decode_offset, encode_cursor
from tracker.selectors import get_run_ref

SEARCH_MODELS_DEFAULT, SEARCH_MODELS_MAX = 100, 1000
SEARCH_VERSIONS_DEFAULT, SEARCH_VERSIONS_MAX = 10_000, 200_000
T = TypeVar("T")


# The registry page's orders, the first the default; names sort case aside, as experiments do.
MODEL_ORDERS: Orders = {
    "name": (Lower("name"), "name", "pk"),
    "updated": ("-updated_at", Lower("name"), "pk"),
    "versions": ("-version_count", Lower("name"), "pk"),
}


def list_registered_models(*, user: Any, text: str = "", order: str = "name") -> QuerySet[RegisteredModel]:
    """The registered models `user` may read; `text` keeps those whose name, description or a
    tag contains it, `order` is one of MODEL_ORDERS."""
    models = containing_text(
        RegisteredModel.objects.filter(readable_models_q(user)),
        text,
        tag_model=RegisteredModelTag,
        owner="model",
    )
    # Annotations do not go through managers: deleted versions are left out explicitly.
    live = Q(versions__deleted_at__isnull=True)
    models = models.annotate(version_count=Count("versions", filter=live, distinct=True)).prefetch_related(
        "aliases__version", "tags"
    )
    return ordered(models, order, MODEL_ORDERS)


def get_registered_model(*, name: str, user: Any, field: str = "name") -> RegisteredModel:
    """A registered model `user` may read (SYSTEM_READER for commands); its versions, aliases and
    lineage are reached through it, so they are checked here too. An unknown name is a 404
    naming `field`, the input that gave it."""
    model = get_with_grant(RegisteredModel, user, where="o.name = %s AND o.deleted_at IS NULL", params=[name])
    if model is None:
        raise NotFound(f"registered model {name!r} does not exist", field=field)
    require_readable(user, model, action="Reading a registered model", named=model_named(model))
    return model


def get_deleted_registered_model(*, name: str) -> RegisteredModel:
    """The most recently deleted model of that name (a name may have been deleted more than once)."""
    found = (
        RegisteredModel.all_objects.filter(name=name, deleted_at__isnull=False)
        .order_by("-deleted_at")
        .first()
    )
    if found is None:
        raise NotFound(f"there is no deleted registered model {name!r}", field="name")
    return found


def get_deleted_model_version(*, model: RegisteredModel, version: int | str) -> ModelVersion:
    try:
        number = int(version)
    except (TypeError, ValueError):
        raise InvalidInput(f"{version!r} is not a version number", field="version") from None
    found = ModelVersion.all_objects.filter(model=model, version=number, deleted_at__isnull=False).first()
    if found is None:
        raise NotFound(f"registered model {model.name!r} has no deleted version {version}", field="version")
    return found


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
    try:
        return ModelVersion.objects.select_related("model", "run", "run__experiment", "logged_model").get(
            model=model, version=number
        )
    except ModelVersion.DoesNotExist:
        raise NotFound(f"registered model {model.name!r} has no version {version}", field="version") from None


def versions_of_run(*, run: Run, user: Any) -> list[ModelVersion]:
    """The live versions registered from a run, of the models `user` may read, with their models
    and aliases (its page says so): reading the run does not open the models made from it."""
    versions = (
        run.model_versions.filter(readable_models_q(user, path="model_id"))
        .select_related("model")
        .prefetch_related("aliases")
    )
    return list(versions.order_by("model__name", "version"))


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


def canonical_stage(stage: Any, *, field: str = "stage") -> str:
    """MLflow accepts stages case-insensitively ('production', 'PRODUCTION')."""
    if isinstance(stage, str):
        for value in Stage.values:
            if value.lower() == stage.strip().lower():
                return value
    raise InvalidInput(f"{stage!r} is not one of {', '.join(Stage.values)}", field=field)


# Where a version comes from ------------------------------------------------------------------

_LOGGED_MODEL_SOURCE = re.compile(r"models:/(m-[0-9a-f]+)/?")
_RUN_SOURCE = re.compile(r"runs:/([^/]+)/?(.*)", re.DOTALL)


@dataclass(frozen=True)
class VersionOrigin:
    """The run a new version is evidence of, and the logged model it registers (if any)."""

    run: Run
    logged_model: LoggedModel | None


def run_named_alone(*, run_id: str, model_id: str, source: str) -> str:
    """The run a registration names without a logged model (by `run_id`, or a `runs:/<run_id>/…`
    source that agrees with it), or "" where `version_origin` has more to work out or refuse."""
    run_source = _RUN_SOURCE.fullmatch(source)
    if model_id or _LOGGED_MODEL_SOURCE.fullmatch(source):
        return ""
    if run_id and run_source and run_source[1] != run_id:
        return ""
    return run_id or (run_source[1] if run_source else "")


def version_origin(*, run_id: str, model_id: str, source: str, user: Any = None) -> VersionOrigin:
    """Find the run behind a version from what an MLflow client sends: `run_id`; else the logged
    model (`model_id`, or a `models:/m-…` source) and the run that logged it; else a
    `runs:/<run_id>/…` source. A version without a run would be a claim without evidence."""
    model_source = _LOGGED_MODEL_SOURCE.fullmatch(source)
    run_source = _RUN_SOURCE.fullmatch(source)
    if model_id and model_source and model_source[1] != model_id:
        raise InvalidInput(f"source {source!r} names another logged model than {model_id!r}", field="source")
    if run_id and run_source and run_source[1] != run_id:
        raise InvalidInput(f"source {source!r} names another run than {run_id!r}", field="source")
    model_id = model_id or (model_source[1] if model_source else "")
    logged_model = None
    if model_id:
        try:
            logged_model = LoggedModel.objects.select_related("source_run").get(
                model_id=model_id, lifecycle=Lifecycle.ACTIVE
            )
        except LoggedModel.DoesNotExist:
            raise NotFound(f"logged model {model_id!r} does not exist", field="model_id") from None
    run_id = run_id or (run_source[1] if run_source else "")
    if run_id:
        # One prepared lookup, which also reads `user`'s grant for the service's READ check.
        run = get_run_ref(run_id=run_id, user=user)
    elif logged_model is not None and logged_model.source_run is not None:
        run = logged_model.source_run
    else:
        raise InvalidInput(
            "a model version needs the run that produced it, as its evidence, and none was given: "
            "send run_id, or a model_id (or source models:/<model_id>) of a model logged in a run, "
            "or a source runs:/<run_id>/<path>",
            field="run_id",
        )
    return VersionOrigin(run=run, logged_model=logged_model)


def download_uri(*, version: ModelVersion) -> str:
    """Where the client downloads a version's files from: the logged model's or run's artifact
    folder for `models:/m-…` and `runs:/<id>/<path>` sources, else the source as stored."""
    source = version.source
    if model_source := _LOGGED_MODEL_SOURCE.fullmatch(source):
        folders = LoggedModel.objects.filter(model_id=model_source[1]).values_list("artifact_uri", flat=True)
        return folders.first() or source
    if run_source := _RUN_SOURCE.fullmatch(source):
        roots = Run.objects.filter(uuid=run_source[1]).values_list("artifact_uri", flat=True)
        root, path = roots.first(), run_source[2].strip("/")
        if root:
            return f"{root}/{path}" if path else root
    return source


# Records: what the MLflow API shows, read in a fixed number of queries -----------------------


@dataclass(frozen=True, slots=True)
class VersionRecord:
    """A model version with its tags and aliases, read as rows (lists may be long)."""

    name: str
    version: int
    created_at: datetime
    updated_at: datetime
    creator: str | None
    stage: str
    description: str
    source: str
    run_id: str
    run_link: str
    model_id: str | None
    tags: tuple[tuple[str, str], ...]
    aliases: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RegisteredModelRecord:
    """A registered model with its tags, aliases and latest version per stage."""

    name: str
    created_at: datetime
    updated_at: datetime
    description: str
    tags: tuple[tuple[str, str], ...]
    aliases: tuple[tuple[str, int], ...]  # (alias, version number)
    latest_versions: tuple[VersionRecord, ...]


# VersionRecord field → the column it is read from.
_VERSION_COLUMNS = {
    "name": "model__name",
    "version": "version",
    "created_at": "created_at",
    "updated_at": "updated_at",
    "creator": "created_by__username",
    "stage": "stage",
    "description": "description",
    "source": "source",
    "run_id": "run__uuid",
    "run_link": "run_link",
    "model_id": "logged_model__model_id",
}


def version_records(versions: QuerySet[ModelVersion]) -> list[VersionRecord]:
    """The versions of an ordered (possibly sliced) queryset, in three queries whatever their
    number: the tags and aliases are read for the same queryset as a subquery, so no id list
    (PostgreSQL takes at most 65,535 parameters) is ever sent."""
    rows = list(versions.values_list("pk", *_VERSION_COLUMNS.values()))
    if not rows:
        return []
    page = versions.values("pk")
    tags: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for version_id, key, value in (
        ModelVersionTag.objects.filter(version__in=page)
        .order_by("key")
        .values_list("version_id", "key", "value")
    ):
        tags[version_id].append((key, value))
    aliases: dict[int, list[str]] = defaultdict(list)
    for version_id, alias in (
        ModelAlias.objects.filter(version__in=page).order_by("alias").values_list("version_id", "alias")
    ):
        aliases[version_id].append(alias)
    return [
        VersionRecord(
            **dict(zip(_VERSION_COLUMNS, row[1:], strict=True)),
            tags=tuple(tags[row[0]]),
            aliases=tuple(aliases[row[0]]),
        )
        for row in rows
    ]


def new_version_record(*, version: ModelVersion, tags: Sequence[TagInput]) -> VersionRecord:
    """The record of a version its caller has just created with `tags`, without reading it back
    (registering is the hot path): the caller holds its model, run, creator and logged model,
    and no alias can point at it yet."""
    return VersionRecord(
        name=version.model.name,
        version=version.version,
        created_at=version.created_at,
        updated_at=version.updated_at,
        creator=version.created_by.username if version.created_by else None,
        stage=version.stage,
        description=version.description,
        source=version.source,
        run_id=version.run.uuid,
        run_link=version.run_link,
        model_id=version.logged_model.model_id if version.logged_model else None,
        tags=tuple(sorted((tag.key, tag.value) for tag in tags)),
        aliases=(),
    )


def _latest_per_stage(versions: QuerySet[ModelVersion]) -> QuerySet[ModelVersion]:
    newer = ModelVersion.objects.filter(
        model=OuterRef("model"), stage=OuterRef("stage"), version__gt=OuterRef("version")
    )
    return versions.filter(~Exists(newer))


def registered_model_records(models: QuerySet[RegisteredModel]) -> list[RegisteredModelRecord]:
    """The models of an ordered (possibly sliced, at most SEARCH_MODELS_MAX) queryset, in six
    queries whatever their number."""
    rows = list(models.values_list("pk", "name", "created_at", "updated_at", "description"))
    ids = [row[0] for row in rows]
    if not ids:
        return []
    tags: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for model_id, key, value in (
        RegisteredModelTag.objects.filter(model__in=ids)
        .order_by("key")
        .values_list("model_id", "key", "value")
    ):
        tags[model_id].append((key, value))
    aliases: dict[int, list[tuple[str, int]]] = defaultdict(list)
    for model_id, alias, number in (
        ModelAlias.objects.filter(model__in=ids)
        .order_by("alias")
        .values_list("model_id", "alias", "version__version")
    ):
        aliases[model_id].append((alias, number))
    latest: dict[str, list[VersionRecord]] = defaultdict(list)
    for record in version_records(
        _latest_per_stage(ModelVersion.objects.filter(model__in=ids)).order_by("version")
    ):
        latest[record.name].append(record)
    return [
        RegisteredModelRecord(
            name=name,
            created_at=created_at,
            updated_at=updated_at,
            description=description,
            tags=tuple(tags[pk]),
            aliases=tuple(aliases[pk]),
            latest_versions=tuple(latest[name]),
        )
        for pk, name, created_at, updated_at, description in rows
    ]


def registered_model_record(*, name: str, user: Any) -> RegisteredModelRecord:
    """One model as the MLflow API shows it, to a user who may read it; the client reads it
    before every change it makes."""
    model = get_registered_model(name=name, user=user)
    return registered_model_records(RegisteredModel.objects.filter(pk=model.pk))[0]


def model_version_record(*, name: str, version: int, user: Any) -> VersionRecord:
    """One version as the MLflow API shows it, to a user who may read its model; a miss says
    whether the model or the version is missing."""
    model = get_registered_model(name=name, user=user)
    records = version_records(ModelVersion.objects.filter(model=model, version=version))
    if not records:
        raise NotFound(f"registered model {model.name!r} has no version {version}", field="version")
    return records[0]


def version_record_by_alias(*, name: str, alias: str, user: Any) -> VersionRecord:
    """The version an alias points at, as the MLflow API shows it (`models:/name@alias`), for a
    user who may read the model."""
    model = get_registered_model(name=name, user=user)
    records = version_records(ModelVersion.objects.filter(model=model, aliases__alias=alias))
    if not records:
        raise NotFound(f"registered model {model.name!r} has no alias {alias!r}", field="alias")
    return records[0]


def latest_versions(*, model: RegisteredModel, stages: Sequence[str]) -> list[VersionRecord]:
    """The newest version in each of `stages` (any case; none given means every stage)."""
    wanted = [canonical_stage(stage, field=f"stages[{i}]") for i, stage in enumerate(stages)] or Stage.values
    return version_records(_latest_per_stage(model.versions.filter(stage__in=wanted)).order_by("version"))


# Search ------------------------------------------------------------------------------------


def _page_size(max_results: int | None, default: int, maximum: int) -> int:
    size = default if max_results is None else max_results
    if not 1 <= size <= maximum:
        raise InvalidInput(f"max_results must be between 1 and {maximum}, got {size}", field="max_results")
    return size


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of search results, and the token for the next one (None after the last)."""

    items: list[T]
    next_page_token: str | None


def search_registered_models(
    *,
    filter_string: str = "",
    order_by: Sequence[str] = (),
    page_token: str = "",
    max_results: int | None = None,
    user: Any,
) -> Page[RegisteredModelRecord]:
    """MLflow's registered-model search: filter on name and tags, order by name or timestamps,
    pages by offset (what MLflow's own tokens hold)."""
    size = _page_size(max_results, SEARCH_MODELS_DEFAULT, SEARCH_MODELS_MAX)
    offset = decode_offset(page_token)
    ordering = search.ordering(
        order_by,
        {"name": "name", "creation_timestamp": "created_at", "last_updated_timestamp": "updated_at",
         "timestamp": "updated_at"},
        [("name", False)],
    )  # fmt: skip
    matching = search.registry_filter(filter_string, search.ModelFilter)
    models = RegisteredModel.objects.filter(matching, readable_models_q(user)).order_by(*ordering)
    records = registered_model_records(models[offset : offset + size + 1])
    more = len(records) > size
    return Page(records[:size], encode_cursor([offset + size]) if more else None)


def search_model_versions(
    *,
    filter_string: str = "",
    order_by: Sequence[str] = (),
    page_token: str = "",
    max_results: int | None = None,
    user: Any,
) -> Page[VersionRecord]:
    """MLflow's model-version search: filter on name, run_id, source_path, version_number and
    tags; newest change first by default."""
    size = _page_size(max_results, SEARCH_VERSIONS_DEFAULT, SEARCH_VERSIONS_MAX)
    offset = decode_offset(page_token)
    ordering = search.ordering(
        order_by or ["last_updated_timestamp DESC"],
        {"name": "model__name", "version_number": "version", "creation_timestamp": "created_at",
         "last_updated_timestamp": "updated_at"},
        [("model__name", False), ("version", True)],
    )  # fmt: skip
    matching = search.registry_filter(filter_string, search.VersionFilter)
    versions = ModelVersion.objects.filter(matching, readable_models_q(user, path="model_id")).order_by(
        *ordering
    )
    records = version_records(versions[offset : offset + size + 1])
    more = len(records) > size
    return Page(records[:size], encode_cursor([offset + size]) if more else None)
