"""NaN and ±Infinity reach JSON through one function (config.json_values), used by the native
API's renderer, the MLflow API and the audit log."""

import json
import math

from config.json_values import json_float, json_safe


def test_json_float_spells_non_finite_values_as_protobuf_does():
    assert [json_float(v) for v in (1.5, math.nan, math.inf, -math.inf)] == [
        1.5,
        "NaN",
        "Infinity",
        "-Infinity",
    ]


def test_json_safe_reaches_into_nested_dicts_lists_and_tuples():
    value = {"a": [1, math.nan, (math.inf, {"b": -math.inf})], "c": {"d": 0.5, "e": None, "f": True}}
    assert json_safe(value) == {
        "a": [1, "NaN", ["Infinity", {"b": "-Infinity"}]],
        "c": {"d": 0.5, "e": None, "f": True},
    }


def test_json_safe_leaves_keys_and_other_objects_to_the_renderer_by_default():
    marker = object()
    assert json_safe({1: marker}) == {1: marker}


def test_json_safe_with_stringify_makes_plain_json_of_anything():
    value = {1: {"when": math.nan, "what": frozenset([3]), "ok": [True, None, "s", 2]}}
    safe = json_safe(value, stringify=True)
    assert safe == {"1": {"when": "NaN", "what": "frozenset({3})", "ok": [True, None, "s", 2]}}
    assert json.loads(json.dumps(safe)) == safe
