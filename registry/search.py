"""The registry's search language: MLflow's registered-model and model-version filters and
order_by, compiled with the run-search grammar (tracker.search) over the registry's own
identifiers, and the offsets its page tokens hold."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar

from django.db.models import Exists, F, OuterRef, Q

from config.exceptions import InvalidInput

# The run-search grammar, its parse errors (with positions) and its LIKE semantics are shared
# with the registry; only the identifiers differ, so the registry brings its own.
from tracker.search import Comparison, Node, ToAst, compile_node, parse_filter, string_q

from .models import ModelVersionTag, RegisteredModelTag

PROMPT_TAG = "mlflow.prompt.is_prompt"  # MLflow keeps prompts in the registry, marked by this tag


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


class _RegistryAst(ToAst):
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


class ModelFilter(_RegistryAst):
    """A registered-model filter: `name` and tags."""

    vocabulary = _MODEL_VOCABULARY


class VersionFilter(_RegistryAst):
    """A model-version filter: `name`, `run_id`, `source_path`, `version_number` and tags."""

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
        return Q(Exists(rows.filter(string_q("value", op, value))))
    field = vocabulary.attributes[cmp.key]
    if cmp.key not in vocabulary.numeric:
        return string_q(field, op, value)
    checked: Any = value  # integers or strings of digits (_check_integer)
    number = tuple(map(int, checked)) if isinstance(checked, tuple) else int(checked)
    if op in ("!=", "NOT IN"):
        return ~Q(**{f"{field}__{'in' if op == 'NOT IN' else 'exact'}": number})
    return Q(**{f"{field}__{_NUMBER_LOOKUPS[op]}": number})


def registry_filter(text: str, grammar: type[_RegistryAst]) -> Q:
    """A filter as a Q. As in MLflow, prompts are left out unless the filter asks for them
    (`tags.mlflow.prompt.is_prompt = 'true'`), and any other comparison on that tag only says
    "not a prompt": the client appends `tag.mlflow.prompt.is_prompt != 'true'` to every
    registered-model search, and models without the tag must still match it."""
    node = parse_filter(text, transformer=grammar)
    prompts_wanted = node is not None and any(_asks_for_prompts(cmp) for cmp in _comparisons(node))
    compile_comparison = partial(
        _compile_comparison, vocabulary=grammar.vocabulary, prompts_wanted=prompts_wanted
    )
    condition = Q() if node is None else compile_node(node, compile_comparison)
    return condition if prompts_wanted else condition & ~grammar.vocabulary.prompt_marker()


def ordering(items: Sequence[str], keys: Mapping[str, str], tie_breakers: Sequence[tuple[str, bool]]) -> list:
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
