"""Plain values that callers hand to the tracker services, already parsed from their wire format.

TagInput, which the registry takes too, is in config/inputs.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple


class MetricInput(NamedTuple):
    """A named tuple rather than a dataclass: a thousand are built per log-batch request."""

    key: str
    value: float
    step: int = 0
    timestamp: int | None = None  # milliseconds; the server's clock when missing


@dataclass(frozen=True, slots=True)
class ParamInput:
    key: str
    value: str


@dataclass(frozen=True, slots=True)
class DatasetSpec:
    name: str
    digest: str
    version: str = ""
    source_type: str = ""
    source: str = ""
    context: str = ""
    schema: str = ""
    profile: str = ""
    # Every input tag as sent, in order (mlflow.data.context included), as (key, value) pairs.
    tags: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class BatchResult:
    """What a log call stored; `points_inserted` excludes exact re-sends of stored points."""

    points_received: int = 0
    points_inserted: int = 0
    params_logged: int = 0
    tags_set: int = 0
    metric_keys: tuple[str, ...] = field(default_factory=tuple)
