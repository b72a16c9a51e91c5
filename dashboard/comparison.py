"""A candidate run beside the run it would replace: what a reviewer compares (pure functions).

Everything here works on `RunData` the selectors already loaded, so the review page costs no
query for the comparison itself.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tracker.selectors import RunData
from tracker.selectors.comparison import flatten

GOALS = {"max": "higher is better", "min": "lower is better"}


@dataclass(frozen=True)
class MetricDelta:
    """A key metric of both runs; `verdict` is "better", "worse", "same" or "" (not comparable)."""

    key: str
    goal: str
    candidate: float | None
    current: float | None

    @property
    def delta(self) -> float | None:
        if self.candidate is None or self.current is None:
            return None
        return self.candidate - self.current

    @property
    def verdict(self) -> str:
        delta = self.delta
        if delta is None or not math.isfinite(delta):
            return ""
        if delta == 0:
            return "same"
        return "better" if (delta > 0) == (self.goal == "max") else "worse"


@dataclass(frozen=True)
class Difference:
    """One key (a param, a dataset field, an environment entry) with both sides' values."""

    key: str
    candidate: str | None
    current: str | None

    @property
    def differs(self) -> bool:
        return self.candidate != self.current


@dataclass(frozen=True)
class Comparison:
    metrics: list[MetricDelta]
    params: list[Difference]
    datasets: list[Difference]
    environment: list[Difference]
    code_commit: Difference

    @property
    def param_changes(self) -> int:
        return sum(row.differs for row in self.params)

    @property
    def environment_changes(self) -> list[Difference]:
        return [row for row in self.environment if row.differs]

    @property
    def dataset_warning(self) -> bool:
        """Models trained on different data are not comparable, however alike their settings."""
        return any(row.differs for row in self.datasets)


def _metric_value(data: RunData | None, key: str) -> float | None:
    metric = data.metrics.get(key) if data else None
    return None if metric is None or metric.is_nan else metric.value


def _differences(candidate: Mapping[str, str], current: Mapping[str, str]) -> list[Difference]:
    return [Difference(key, candidate.get(key), current.get(key)) for key in sorted({*candidate, *current})]


def _datasets(data: RunData | None) -> dict[str, str]:
    """Each dataset input as "name (context)" → "version · digest"."""
    if data is None:
        return {}
    return {
        f"{d.name} ({d.context})" if d.context else d.name: f"{d.version or '—'} · {d.digest}"
        for d in data.datasets
    }


def compare_runs(
    *, candidate: RunData, current: RunData | None, key_metrics: Sequence[Mapping[str, str]]
) -> Comparison:
    """The candidate beside the current holder (None: nothing holds the alias yet)."""
    return Comparison(
        metrics=[
            MetricDelta(
                m["key"],
                m.get("goal", "max"),
                _metric_value(candidate, m["key"]),
                _metric_value(current, m["key"]),
            )
            for m in key_metrics
        ],
        params=_differences(candidate.params, current.params if current else {}),
        datasets=_differences(_datasets(candidate), _datasets(current)),
        environment=_differences(
            flatten(candidate.run.environment or {}),
            flatten(current.run.environment or {}) if current else {},
        ),
        code_commit=Difference(
            "code commit",
            candidate.run.code_commit or None,
            (current.run.code_commit or None) if current else None,
        ),
    )
