"""Reads of the registry: models, versions, aliases and their history, and the MLflow-style
search over models and versions."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, ClassVar, Generic, TypeVar

from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet

from config.exceptions import InvalidInput, NotFound
from tracker.models import Lifecycle, LoggedModel, Run

# The run-search grammar, its parse errors (with positions) and its LIKE semantics are shared
# with the registry; only the identifiers differ, so the registry brings its own.
from tracker.search import (
    Comparison,
    Node,
    _compile_node,
    _string_q,
    _ToAst,
    decode_cursor,
    encode_cursor,
    parse_filter,
)
from tracker.services import TagInput

from .models import (
    AliasHistory,
    ModelAlias,
    ModelVersion,
    ModelVersionTag,
    RegisteredModel,
    RegisteredModelTag,
    Stage,
)

PROMPT_TAG = "mlflow.prompt.is_prompt"  # MLflow keeps prompts in the registry, marked by this tag
SEARCH_MODELS_DEFAULT, SEARCH_MODELS_MAX = 100, 1000
SEARCH_VERSIONS_DEFAULT, SEARCH_VERSIONS_MAX = 10_000, 200_000
_MAX_OFFSET = 2**53  # page tokens are offsets; larger ones are forged, and overflow SQL integers
T = TypeVar("T")


def list_registered_models() -> QuerySet[RegisteredModel]:
    return RegisteredModel.objects.annotate(version_count=Count("versions", distinct=True)).prefetch_related(
        "aliases__version", "tags"
    )


def get_registered_model(*, name: str) -> RegisteredModel:
    try:
        return RegisteredModel.objects.get(name=name)
    except RegisteredModel.DoesNotExist:
        raise NotFound(f"registered model {name!r} does not exist", field="name") from None


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


def version_origin(*, run_id: str, model_id: str, source: str) -> VersionOrigin:
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
        try:
            # Only what registering reads: wide rows cost a registration noticeable time.
            run = Run.objects.only("id", "uuid", "lifecycle", "artifact_uri").get(uuid=run_id)
        except Run.DoesNotExist:
            raise NotFound(f"run {run_id!r} does not exist", field="run_id") from None
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


def registered_model_record(*, name: str) -> RegisteredModelRecord:
    """One model as the MLflow API shows it; the client reads it before every change it makes."""
    records = registered_model_records(RegisteredModel.objects.filter(name=name))
    if not records:
        raise NotFound(f"registered model {name!r} does not exist", field="name")
    return records[0]


def model_version_record(*, name: str, version: int) -> VersionRecord:
    """One version as the MLflow API shows it; a miss says whether the model or the version is
    missing."""
    records = version_records(ModelVersion.objects.filter(model__name=name, version=version))
    if not records:
        model = get_registered_model(name=name)  # says which of the two is missing
        raise NotFound(f"registered model {model.name!r} has no version {version}", field="version")
    return records[0]


def version_record_by_alias(*, name: str, alias: str) -> VersionRecord:
    """The version an alias points at, as the MLflow API shows it (`models:/name@alias`)."""
    records = version_records(ModelVersion.objects.filter(model__name=name, aliases__alias=alias))
    if not records:
        model = get_registered_model(name=name)
        raise NotFound(f"registered model {model.name!r} has no alias {alias!r}", field="alias")
    return records[0]


def latest_versions(*, model: RegisteredModel, stages: Sequence[str]) -> list[VersionRecord]:
    """The newest version in each of `stages` (any case; none given means every stage)."""
    wanted = [canonical_stage(stage, field=f"stages[{i}]") for i, stage in enumerate(stages)] or Stage.values
    return version_records(_latest_per_stage(model.versions.filter(stage__in=wanted)).order_by("version"))


# Search ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Vocabulary:
    """What a registry filter may name: attributes (→ ORM field) and tags of one model."""

    attributes: Mapping[str, str]
    numeric: frozenset[str]
    tag_model: type[RegisteredModelTag] | type[ModelVersionTag]
    tag_owner: str  # the tag model's foreign key to the searched row
    prompt_marker: Callable[[], Q]  # the searched row belongs to a prompt


_MODEL_VOCABULARY = _Vocabulary(
    attributes={"name": "name"},
    numeric=frozenset(),
    tag_model=RegisteredModelTag,
    tag_owner="model",
    prompt_marker=lambda: Q(
        Exists(RegisteredModelTag.objects.filter(model=OuterRef("pk"), key=PROMPT_TAG, value="true"))
    ),
)
# As MLflow does, a version belongs to a prompt when a version of its model carries the tag.
_VERSION_VOCABULARY = _Vocabulary(
    attributes={
        "name": "model__name",
        "run_id": "run__uuid",
        "source_path": "source",
        "version_number": "version",
    },
    numeric=frozenset({"version_number"}),
    tag_model=ModelVersionTag,
    tag_owner="version",
    prompt_marker=lambda: Q(
        Exists(ModelVersionTag.objects.filter(version__model=OuterRef("model"), key=PROMPT_TAG, value="true"))
    ),
)
_ENTITY_PREFIXES = {
    "tag": "tag",
    "tags": "tag",
    "attribute": "attribute",
    "attributes": "attribute",
    "attr": "attribute",
}
_STRING_OPS = ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN")
_NUMBER_OPS = ("=", "!=", ">", ">=", "<", "<=", "IN", "NOT IN")
_TAG_OPS = ("=", "!=", "LIKE", "ILIKE", "IS NULL", "IS NOT NULL")
_NUMBER_LOOKUPS = {"=": "exact", ">": "gt", ">=": "gte", "<": "lt", "<=": "lte", "IN": "in"}


def _unquote(key: str) -> str:
    if len(key) > 1 and key[0] == "`":
        return key[1:-1]
    if len(key) > 1 and key[0] == '"':
        return key[1:-1].replace('""', '"')
    return key


class _RegistryAst(_ToAst):
    """The run-search tree, with identifiers checked against a registry vocabulary."""

    vocabulary: ClassVar[_Vocabulary]

    def comparison(self, items: list) -> Comparison:
        ident, op, value = (*items, None) if len(items) == 2 else items
        text, where = str(ident), f"at position {ident.start_pos}"
        prefix, dot, rest = text.partition(".")
        if dot and not text.startswith("`"):
            entity, key = _ENTITY_PREFIXES.get(prefix.lower()), _unquote(rest)
        else:  # a bare or back-quoted name is an attribute
            entity, key = "attribute", _unquote(text)
        if entity is None:
            raise InvalidInput(
                f"Invalid entity type '{prefix}' {where}. Valid values are ['tag', 'attribute']",
                field="filter",
            )
        attributes = self.vocabulary.attributes
        if entity == "attribute" and key not in attributes:
            raise InvalidInput(
                f"Invalid attribute key '{key}' {where}. Valid values are {sorted(attributes)}",
                field="filter",
            )
        return self._checked(Comparison(entity, key, " ".join(op.upper().split()), value), text, where)

    def _checked(self, cmp: Comparison, text: str, where: str) -> Comparison:
        numeric = cmp.entity == "attribute" and cmp.key in self.vocabulary.numeric
        allowed = _NUMBER_OPS if numeric else _STRING_OPS if cmp.entity == "attribute" else _TAG_OPS
        if cmp.op not in allowed:
            raise InvalidInput(
                f"Invalid comparator '{cmp.op}' for {text} {where}. Valid comparators: {', '.join(allowed)}",
                field="filter",
            )
        for value in cmp.value if isinstance(cmp.value, tuple) else (cmp.value,):
            if numeric:
                _check_integer(value, text, where)
            elif value is not None and not isinstance(value, str):
                raise InvalidInput(
                    f"Expected a quoted string value for {text} {where}, got {value}", field="filter"
                )
        return cmp


def _check_integer(value: Any, text: str, where: str) -> None:
    """A version number: an integer literal, or a quoted one (MLflow accepts '3' too)."""
    if isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d{1,19}\s*", value):
        value = int(value)
    if not isinstance(value, int) or not -(2**63) <= value < 2**63:
        raise InvalidInput(f"Expected an integer value for {text} {where}, got {value!r}", field="filter")


class _ModelFilter(_RegistryAst):
    vocabulary = _MODEL_VOCABULARY


class _VersionFilter(_RegistryAst):
    vocabulary = _VERSION_VOCABULARY


def _comparisons(node: Node) -> list[Comparison]:
    if isinstance(node, Comparison):
        return [node]
    return [cmp for item in node.items for cmp in _comparisons(item)]


def _asks_for_prompts(cmp: Comparison) -> bool:
    if cmp.entity != "tag" or cmp.key != PROMPT_TAG or not isinstance(cmp.value, str):
        return False
    return (cmp.op, cmp.value.lower()) in (("=", "true"), ("!=", "false"))


def _compile_comparison(cmp: Comparison, *, vocabulary: _Vocabulary, prompts_wanted: bool) -> Q:
    op, value = cmp.op, cmp.value
    if cmp.entity == "tag":
        if cmp.key == PROMPT_TAG and not prompts_wanted:
            return Q()  # "not a prompt", which holds for every row the search returns anyway
        rows = vocabulary.tag_model.objects.filter(**{vocabulary.tag_owner: OuterRef("pk")}, key=cmp.key)
        if op in ("IS NULL", "IS NOT NULL"):
            return ~Q(Exists(rows)) if op == "IS NULL" else Q(Exists(rows))
        return Q(Exists(rows.filter(_string_q("value", op, value))))
    field = vocabulary.attributes[cmp.key]
    if cmp.key not in vocabulary.numeric:
        return _string_q(field, op, value)
    checked: Any = value  # integers or strings of digits (_check_integer)
    number = tuple(map(int, checked)) if isinstance(checked, tuple) else int(checked)
    if op in ("!=", "NOT IN"):
        return ~Q(**{f"{field}__{'in' if op == 'NOT IN' else 'exact'}": number})
    return Q(**{f"{field}__{_NUMBER_LOOKUPS[op]}": number})


def _registry_filter(text: str, grammar: type[_RegistryAst]) -> Q:
    """A filter as a Q. As in MLflow, prompts are left out unless the filter asks for them
    (`tags.mlflow.prompt.is_prompt = 'true'`), and any other comparison on that tag only says
    "not a prompt": the client appends `tag.mlflow.prompt.is_prompt != 'true'` to every
    registered-model search, and models without the tag must still match it."""
    node = parse_filter(text, transformer=grammar)
    prompts_wanted = node is not None and any(_asks_for_prompts(cmp) for cmp in _comparisons(node))
    compile_comparison = partial(
        _compile_comparison, vocabulary=grammar.vocabulary, prompts_wanted=prompts_wanted
    )
    condition = Q() if node is None else _compile_node(node, compile_comparison)
    return condition if prompts_wanted else condition & ~grammar.vocabulary.prompt_marker()


def _ordering(
    items: Sequence[str], keys: Mapping[str, str], tie_breakers: Sequence[tuple[str, bool]]
) -> list:
    """`"<key> [ASC|DESC]"` items as ORM orderings, then the tie-breakers not already used."""
    fields: dict[str, bool] = {}  # field → descending
    for index, item in enumerate(items):
        words = item.split()
        key = _unquote(words[0]) if words else ""
        direction = words[1].upper() if len(words) == 2 else "ASC"
        if len(words) not in (1, 2) or direction not in ("ASC", "DESC") or key not in keys:
            raise InvalidInput(
                f"order_by[{index}] {item!r}: expected '<key> [ASC|DESC]' with a key among {sorted(keys)}",
                field="order_by",
            )
        if keys[key] in fields:
            raise InvalidInput(f"order_by[{index}] {item!r}: {key} is ordered by twice", field="order_by")
        fields[keys[key]] = direction == "DESC"
    for field, descending in tie_breakers:
        fields.setdefault(field, descending)
    return [F(field).desc() if descending else F(field).asc() for field, descending in fields.items()]


def _offset(page_token: str) -> int:
    if not page_token:
        return 0
    values = decode_cursor(page_token)
    if len(values) != 1 or type(values[0]) is not int or not 0 <= values[0] < _MAX_OFFSET:
        raise InvalidInput("Invalid page token", field="page_token")
    return values[0]


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
) -> Page[RegisteredModelRecord]:
    """MLflow's registered-model search: filter on name and tags, order by name or timestamps,
    pages by offset (what MLflow's own tokens hold)."""
    size = _page_size(max_results, SEARCH_MODELS_DEFAULT, SEARCH_MODELS_MAX)
    offset = _offset(page_token)
    ordering = _ordering(
        order_by,
        {"name": "name", "creation_timestamp": "created_at", "last_updated_timestamp": "updated_at",
         "timestamp": "updated_at"},
        [("name", False)],
    )  # fmt: skip
    models = RegisteredModel.objects.filter(_registry_filter(filter_string, _ModelFilter)).order_by(*ordering)
    records = registered_model_records(models[offset : offset + size + 1])
    more = len(records) > size
    return Page(records[:size], encode_cursor([offset + size]) if more else None)


def search_model_versions(
    *,
    filter_string: str = "",
    order_by: Sequence[str] = (),
    page_token: str = "",
    max_results: int | None = None,
) -> Page[VersionRecord]:
    """MLflow's model-version search: filter on name, run_id, source_path, version_number and
    tags; newest change first by default."""
    size = _page_size(max_results, SEARCH_VERSIONS_DEFAULT, SEARCH_VERSIONS_MAX)
    offset = _offset(page_token)
    ordering = _ordering(
        order_by or ["last_updated_timestamp DESC"],
        {"name": "model__name", "version_number": "version", "creation_timestamp": "created_at",
         "last_updated_timestamp": "updated_at"},
        [("model__name", False), ("version", True)],
    )  # fmt: skip
    versions = ModelVersion.objects.filter(_registry_filter(filter_string, _VersionFilter)).order_by(
        *ordering
    )
    records = version_records(versions[offset : offset + size + 1])
    more = len(records) > size
    return Page(records[:size], encode_cursor([offset + size]) if more else None)
