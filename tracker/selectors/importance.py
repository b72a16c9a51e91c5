"""Which params matter for a metric, over the runs compared (W&B's "parameter importance"): each
param's importance by a random forest fitted to predict the metric's latest value from the
params, and its linear correlation with the metric.

A random forest (scikit-learn's) sees non-linear effects and interactions that a correlation
misses: a learning rate with a sweet spot in the middle has a strong importance and a weak
correlation. It is refitted for every request; with at most MAX_CHART_RUNS runs that takes tens
of milliseconds, and the forest's seed is fixed, so the same runs always give the same answer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .runs import RunData

MIN_IMPORTANCE_RUNS = 4  # fewer runs than this tell nothing about a param
FOREST_TREES = 50


@dataclass(frozen=True)
class ParamImportance:
    """One param's weight for the metric."""

    key: str
    importance: float  # the param's share of the forest's decrease in squared error; sums to 1
    correlation: float | None  # Pearson's r with the metric; None for text or a single value


@dataclass(frozen=True)
class Importance:
    """The params weighed for one metric, or why none could be."""

    metric: str
    runs_used: int  # runs with a number for the metric
    params: list[ParamImportance]  # the most important first
    note: str = ""  # why `params` is empty


def param_importance(*, runs: Sequence[RunData], metric: str) -> Importance:
    """The params' importance for `metric` over the runs that have a number for it; params every
    such run shares (or none has) are left out, since they explain nothing."""
    used = [data for data in runs if _finite(data, metric)]
    if len(used) < MIN_IMPORTANCE_RUNS:
        note = f"needs at least {MIN_IMPORTANCE_RUNS} runs with a value for {metric}; {len(used)} have one"
        return Importance(metric, len(used), [], note)
    target = np.array([data.metrics[metric].value for data in used], dtype=float)
    if np.ptp(target) == 0:
        return Importance(metric, len(used), [], f"{metric} is the same in every run")
    keys = sorted({key for data in used for key in data.params})
    columns = {key: [data.params.get(key) for data in used] for key in keys}
    varying = [key for key in keys if len(set(columns[key])) > 1]
    if not varying:
        return Importance(metric, len(used), [], "every run has the same params")
    features = np.column_stack([_encoded(columns[key]) for key in varying])
    shares = _forest_importances(features, target)
    params = [
        ParamImportance(key, float(share), _correlation(columns[key], target))
        for key, share in zip(varying, shares, strict=True)
    ]
    params.sort(key=lambda p: (-p.importance, -abs(p.correlation or 0.0), p.key))
    return Importance(metric, len(used), params)


def _finite(data: RunData, metric: str) -> bool:
    value = data.metrics.get(metric)
    return value is not None and value.value is not None and math.isfinite(value.value)


def _numbers(values: list[str | None]) -> np.ndarray | None:
    """The param's values as numbers (NaN where a run lacks it), or None if any is text."""
    numbers = np.full(len(values), np.nan)
    for index, value in enumerate(values):
        if value is None:
            continue
        try:
            number = float(value)
        except ValueError:
            return None
        if not math.isfinite(number):
            return None
        numbers[index] = number
    return numbers


def _encoded(values: list[str | None]) -> np.ndarray:
    """A column the forest can split: numbers as they are, text as the index of its value in
    sorted order (a tree splits on the index), a run without the param as NaN (sklearn's trees
    learn which side missing values go)."""
    numbers = _numbers(values)
    if numbers is not None:
        return numbers
    categories = sorted({value for value in values if value is not None})
    index = {value: position for position, value in enumerate(categories)}
    return np.array([np.nan if value is None else index[value] for value in values], dtype=float)


def _correlation(values: list[str | None], target: np.ndarray) -> float | None:
    numbers = _numbers(values)
    if numbers is None:
        return None
    present = ~np.isnan(numbers)
    if present.sum() < 3 or np.ptp(numbers[present]) == 0 or np.ptp(target[present]) == 0:
        return None
    return float(np.corrcoef(numbers[present], target[present])[0, 1])


def _forest_importances(features: np.ndarray, target: np.ndarray) -> np.ndarray:
    # Imported here: scikit-learn takes a second to import, which only this panel should pay.
    from sklearn.ensemble import RandomForestRegressor

    forest = RandomForestRegressor(n_estimators=FOREST_TREES, random_state=0, n_jobs=1)
    forest.fit(features, target)
    return forest.feature_importances_
