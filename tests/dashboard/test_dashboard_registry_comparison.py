"""The review page's comparison of two runs, as pure functions over RunData."""

from __future__ import annotations

import math

from dashboard.comparison import MetricDelta, compare_runs, flatten
from tracker.models import DatasetInput, Run
from tracker.selectors import MetricValue, RunData


def run_data(*, params=None, metrics=None, datasets=(), environment=None, commit="") -> RunData:
    run = Run(name="r", environment=environment or {}, code_commit=commit)
    return RunData(
        run=run,
        params=params or {},
        metrics={
            key: MetricValue(key, value, value is None, 1, 1, value, value, 1)
            for key, value in (metrics or {}).items()
        },
        datasets=[DatasetInput(name=n, version=v, digest=d, context=c) for n, v, d, c in datasets],
    )


def test_a_delta_is_better_in_the_direction_of_the_goal():
    assert MetricDelta("f1", "max", 0.9, 0.8).verdict == "better"
    assert MetricDelta("f1", "max", 0.7, 0.8).verdict == "worse"
    assert MetricDelta("loss", "min", 0.2, 0.3).verdict == "better"
    assert MetricDelta("loss", "min", 0.4, 0.3).verdict == "worse"
    assert MetricDelta("loss", "min", 0.3, 0.3).verdict == "same"


def test_a_missing_or_infinite_value_has_no_verdict():
    assert MetricDelta("f1", "max", 0.9, None).delta is None
    assert MetricDelta("f1", "max", 0.9, None).verdict == ""
    assert MetricDelta("f1", "max", math.inf, math.inf).verdict == ""


def test_a_nan_metric_is_shown_as_missing():
    comparison = compare_runs(
        candidate=run_data(metrics={"f1": None}),
        current=run_data(metrics={"f1": 0.8}),
        key_metrics=[{"key": "f1"}],
    )
    assert comparison.metrics == [MetricDelta("f1", "max", None, 0.8)]


def test_params_are_diffed_over_both_runs_keys():
    comparison = compare_runs(
        candidate=run_data(params={"lr": "0.1", "epochs": "3"}),
        current=run_data(params={"lr": "0.2", "seed": "1"}),
        key_metrics=[],
    )
    assert [(r.key, r.candidate, r.current, r.differs) for r in comparison.params] == [
        ("epochs", "3", None, True),
        ("lr", "0.1", "0.2", True),
        ("seed", None, "1", True),
    ]


def test_same_dataset_names_with_another_digest_raise_the_warning():
    same = [("digits", "2.1", "a" * 64, "training")]
    other = [("digits", "2.1", "b" * 64, "training")]
    assert not compare_runs(
        candidate=run_data(datasets=same), current=run_data(datasets=same), key_metrics=[]
    ).dataset_warning
    warned = compare_runs(candidate=run_data(datasets=same), current=run_data(datasets=other), key_metrics=[])
    assert warned.dataset_warning
    assert warned.datasets[0].key == "digits (training)"


def test_the_environment_is_compared_entry_by_entry():
    comparison = compare_runs(
        candidate=run_data(environment={"python": "3.11", "packages": {"torch": "2.3", "numpy": "2.0"}}),
        current=run_data(environment={"python": "3.11", "packages": {"torch": "2.2", "numpy": "2.0"}}),
        key_metrics=[],
    )
    assert [(r.key, r.candidate, r.current) for r in comparison.environment_changes] == [
        ("packages.torch", "2.3", "2.2")
    ]
    assert len(comparison.environment) == 3


def test_without_a_current_holder_everything_is_the_candidates():
    comparison = compare_runs(
        candidate=run_data(params={"lr": "0.1"}, metrics={"f1": 0.9}, commit="abc"),
        current=None,
        key_metrics=[{"key": "f1", "goal": "max"}],
    )
    assert comparison.metrics[0].verdict == ""
    assert comparison.code_commit.candidate == "abc" and comparison.code_commit.current is None
    assert comparison.params[0].current is None


def test_flatten_names_nested_keys_with_dots():
    assert flatten({"a": {"b": {"c": 1}}, "d": [1, 2]}) == {"a.b.c": "1", "d": "[1, 2]"}
