"""Checks shared by the run and logged-model write services: batch sizes, and params and tags
validated against MLflow's limits before anything is stored."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from config.exceptions import InvalidInput
from config.inputs import TagInput
from tracker.validation import (
    MAX_PARAM_VALUE_LENGTH,
    MAX_RUN_NAME_LENGTH,
    MAX_TAG_VALUE_LENGTH,
    validate_key,
    validate_text,
)

from .inputs import ParamInput
from .runs import RUN_NAME_TAG


def check_batch_size(items: Sequence[Any], limit: int, field: str) -> None:
    """Refuse a batch of more than `limit` items, naming the field."""
    if len(items) > limit:
        raise InvalidInput(f"{len(items)} items in one batch; the limit is {limit}", field=field)


def validated_params(params: Sequence[ParamInput]) -> dict[str, str]:
    """Params as key → text; the same key twice with different values is an error."""
    values: dict[str, str] = {}
    for index, param in enumerate(params):
        validate_key(param.key, field=f"params[{index}].key")
        value = param.value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        value = validate_text(value, field=f"params[{index}].value", max_length=MAX_PARAM_VALUE_LENGTH)
        if param.key in values and values[param.key] != value:
            raise InvalidInput(
                f"param {param.key!r} appears twice in the batch with different values "
                f"({values[param.key]!r} and {value!r})",
                field=f"params[{index}].value",
            )
        values[param.key] = value
    return values


def validated_tags(tags: Sequence[TagInput]) -> dict[str, str]:
    """Tags as key → text (the last value of a key wins); MLflow's name tag must be a valid run name."""
    values: dict[str, str] = {}
    for index, tag in enumerate(tags):
        validate_key(tag.key, field=f"tags[{index}].key")
        values[tag.key] = validate_text(
            tag.value, field=f"tags[{index}].value", max_length=MAX_TAG_VALUE_LENGTH
        )
        if tag.key == RUN_NAME_TAG:  # it renames the run, so it must be a valid run name
            values[tag.key] = validate_text(
                tag.value, field=f"tags[{index}].value", max_length=MAX_RUN_NAME_LENGTH, allow_empty=False
            ).strip()
    return values
