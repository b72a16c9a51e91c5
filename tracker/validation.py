"""MLflow's limits, checked before anything is written; every error names its field."""

from __future__ import annotations

import math
import posixpath
import re
from typing import Any

from config.exceptions import InvalidInput

MAX_KEY_LENGTH = 250
MAX_PARAM_VALUE_LENGTH = 6000
MAX_TAG_VALUE_LENGTH = 8000
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_PER_BATCH = 100
MAX_TAGS_PER_BATCH = 100
MAX_EXPERIMENT_NAME_LENGTH = 500
MAX_RUN_NAME_LENGTH = 250
MAX_EXPERIMENT_TAG_VALUE_LENGTH = 20000
# Steps and timestamps are stored as signed 64-bit integers.
MAX_INT64 = 2**63 - 1
MIN_INT64 = -(2**63)

# The longest name of one file or folder in an artifact path, in UTF-8 bytes: common filesystems
# allow 255, and local storage may add an 8-character suffix ("_abc1234") to a file's name.
MAX_PATH_SEGMENT_BYTES = 240

# How deep a JSON document kept in a JSON column may nest: Django serialises it recursively.
MAX_JSON_DEPTH = 64

_KEY_PATTERN = re.compile(r"[/\w.\- :]*")  # fullmatch: `$` would let a trailing newline by


def validate_key(key: Any, *, field: str) -> str:
    """A metric/param/tag key: ≤ 250 chars of `[/\\w.\\- :]`, a relative path without `..`."""
    if not isinstance(key, str) or not key:
        raise InvalidInput("must be a non-empty string", field=field)
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidInput(f"is {len(key)} characters long; the limit is {MAX_KEY_LENGTH}", field=field)
    if not _KEY_PATTERN.fullmatch(key):
        raise InvalidInput(
            f"{key!r} may only contain letters, digits, underscores, dashes, periods, spaces, "
            "colons and slashes",
            field=field,
        )
    if key.startswith("/") or ".." in key.split("/") or posixpath.normpath(key) != key.rstrip("/"):
        raise InvalidInput(
            f"{key!r} must be a normalised relative path (no '..', no leading '/')", field=field
        )
    return key


def validate_text(value: Any, *, field: str, max_length: int, allow_empty: bool = True) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidInput(f"must be a string, not {type(value).__name__}", field=field)
    if not allow_empty and not value.strip():
        raise InvalidInput("must not be empty", field=field)
    if len(value) > max_length:
        raise InvalidInput(f"is {len(value)} characters long; the limit is {max_length}", field=field)
    if "\x00" in value:
        raise InvalidInput("must not contain NUL characters", field=field)
    if not is_unicode_text(value):
        raise InvalidInput(LONE_SURROGATE, field=field)
    return value


LONE_SURROGATE = "must not contain a lone surrogate (U+D800 to U+DFFF): it is not text any client can read"


def is_unicode_text(value: str) -> bool:
    """Whether `value` can be written as UTF-8: a JSON string may smuggle in a lone surrogate
    ("\\ud800"), which no database, JSON encoder or client then takes back."""
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def coerce_metric_value(value: Any, *, field: str) -> float:
    """A float; "NaN", "Infinity" and "-Infinity" (protobuf JSON spellings) are accepted."""
    if isinstance(value, bool):
        raise InvalidInput("must be a number, not a boolean", field=field)
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str) and value.strip() in {"NaN", "nan", "Infinity", "inf", "-Infinity", "-inf"}:
        number = float(value.strip().replace("Infinity", "inf"))
    else:
        raise InvalidInput(f"must be a number, not {value!r}"[:200], field=field)
    if math.isnan(number):
        return math.nan
    return number


def coerce_int64(value: Any, *, field: str, minimum: int = MIN_INT64) -> int:
    if isinstance(value, bool):
        raise InvalidInput("must be an integer, not a boolean", field=field)
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        value = int(value.strip())
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        raise InvalidInput(f"must be an integer, not {value!r}"[:200], field=field)
    if value < minimum or value > MAX_INT64:
        raise InvalidInput(f"{value} is outside the range {minimum}..{MAX_INT64}", field=field)
    return value


def validate_artifact_path(path: Any, *, field: str = "path") -> str:
    """A relative POSIX path inside a run's artifact root; never escapes it."""
    if not isinstance(path, str) or not path.strip():
        raise InvalidInput("must be a non-empty relative path", field=field)
    if len(path) > 1000:
        raise InvalidInput("is longer than 1000 characters", field=field)
    normalised = posixpath.normpath(path)
    if (
        path.startswith("/")
        or "\\" in path
        or "\x00" in path
        or normalised.startswith("..")
        or normalised in {".", ""}
        or ".." in path.split("/")
    ):
        raise InvalidInput(f"{path!r} must be a relative path inside the run's artifacts", field=field)
    for segment in normalised.split("/"):
        if len(segment.encode()) > MAX_PATH_SEGMENT_BYTES:
            raise InvalidInput(
                f"the name {segment[:40]!r}… is longer than {MAX_PATH_SEGMENT_BYTES} bytes", field=field
            )
    return normalised


def validate_json_document(value: Any, *, field: str) -> Any:
    """A JSON document PostgreSQL can store and any client can read back: no NUL character in a
    key or a string (jsonb refuses them), only finite numbers (strict JSON has no NaN or
    Infinity), nested at most MAX_JSON_DEPTH levels. Walked without recursion, so a hostile
    depth costs a refusal, not a RecursionError."""
    pending: list[tuple[Any, str, int]] = [(value, field, 0)]
    while pending:
        item, where, depth = pending.pop()
        if depth > MAX_JSON_DEPTH:
            raise InvalidInput(f"nests deeper than {MAX_JSON_DEPTH} levels", field=field)
        if isinstance(item, str) and "\x00" in item:
            raise InvalidInput("must not contain NUL characters", field=where)
        if isinstance(item, str) and not is_unicode_text(item):
            raise InvalidInput(LONE_SURROGATE, field=where)
        if isinstance(item, float) and not math.isfinite(item):
            raise InvalidInput(f"{item} is not a finite number", field=where)
        if isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str) or "\x00" in key:
                    raise InvalidInput("keys must not contain NUL characters", field=where)
                if not is_unicode_text(key):
                    raise InvalidInput(f"keys {LONE_SURROGATE}", field=where)
                pending.append((child, f"{where}.{key}", depth + 1))
        elif isinstance(item, (list, tuple)):
            pending.extend((child, f"{where}[{index}]", depth + 1) for index, child in enumerate(item))
    return value
