"""Selector output → what run_chart.js needs: chart configs and JSON-safe series payloads."""

from __future__ import annotations

import math
from collections.abc import Sequence

from django.urls import reverse

from tracker.models import Run
from tracker.selectors import Series


def chart_configs(*, run: Run, metric_keys: Sequence[str]) -> list[dict[str, str]]:
    """One chart per metric key; the page hands this to JS through json_script."""
    return [
        {
            "elementId": f"metric-chart-{index}",
            "key": key,
            "runName": run.name,
            "seriesUrl": reverse("dashboard:metric-series", kwargs={"run_id": run.uuid, "key": key}),
        }
        for index, key in enumerate(metric_keys)
    ]


def series_payload(series: Series) -> dict[str, object]:
    """The series as strict JSON: NaN and ±Infinity become null (JSON has no spelling for them)."""
    values = [v if v is not None and math.isfinite(v) else None for v in series.values]
    return {
        "runId": series.run_id,
        "key": series.key,
        "steps": series.steps,
        "values": values,
        "totalPoints": series.total_points,
        "downsampled": series.downsampled,
    }
