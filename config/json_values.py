"""NaN and ±Infinity on the way to JSON, spelled once for every edge.

Strict JSON has no token for a non-finite float, and orjson would write `null`; protobuf's JSON
mapping (which the MLflow client reads) spells them as the strings "NaN", "Infinity" and
"-Infinity". The native API, the MLflow API and the audit log all use that spelling, so that a
value reads the same wherever it is shown.
"""

from __future__ import annotations

import math
from typing import Any


def json_float(value: float) -> float | str:
    """A float as JSON can hold it: itself when finite, else "NaN", "Infinity" or "-Infinity"."""
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def finite_or_none(value: float | None) -> float | None:
    """A value to plot: itself when finite, else None (a chart leaves the point out)."""
    return value if value is not None and math.isfinite(value) else None


def json_safe(value: Any, *, stringify: bool = False) -> Any:
    """`value` with every float inside dicts, lists and tuples passed through `json_float`.

    With `stringify`, the result is plain JSON whatever went in (the audit log stores it as
    such): dict keys become strings, and any value that is not a str, number, bool or None
    becomes its `str()`. Without it, other values are left to the renderer.
    """
    if isinstance(value, float):
        return json_float(value)
    if isinstance(value, dict):
        return {
            (str(key) if stringify else key): json_safe(item, stringify=stringify)
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [json_safe(item, stringify=stringify) for item in value]
    if stringify and not (value is None or isinstance(value, (str, int))):
        return str(value)
    return value
