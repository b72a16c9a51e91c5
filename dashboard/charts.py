"""Selector output → what run_chart.js and compare.js need: chart configs and strict-JSON payloads."""

from __future__ import annotations

import math
from collections.abc import Sequence

from django.urls import reverse

from tracker.models import Run, RunStatus
from tracker.selectors import ChartSeries
from tracker.selectors.comparison import GroupBand

# A run keeps its colour on every chart of a page: colour i goes to the i-th run (Tableau 10,
# then a second ring of darker tones, so 20 runs stay distinct before colours repeat).
PALETTE = (
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac", "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2",
    "#7f7f7f", "#bcbd22", "#17becf", "#393b79",
)  # fmt: skip


def run_colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def _json_number(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def series_payload(series: ChartSeries) -> dict[str, object]:
    """The series as strict JSON: NaN and ±Infinity become null (JSON has no spelling for them)."""
    return {
        "runId": series.run_id,
        "key": series.key,
        "steps": series.steps,
        "timestamps": series.timestamps,
        "values": [_json_number(v) for v in series.values],
        "totalPoints": series.total_points,
        "downsampled": series.downsampled,
    }


def band_payload(band: GroupBand) -> dict[str, object]:
    return {
        "key": band.key,
        "label": band.label,
        "runIds": band.run_ids,
        "steps": band.steps,
        "mean": [_json_number(v) for v in band.mean],
        "low": [_json_number(v) for v in band.low],
        "high": [_json_number(v) for v in band.high],
    }


def chart_payload(
    *, series: Sequence[ChartSeries], runs: Sequence[Run], bands: Sequence[GroupBand] = ()
) -> dict[str, object]:
    """One response for many series; `running` lists the runs a live chart should keep polling."""
    return {
        "series": [series_payload(item) for item in series],
        "groups": [band_payload(band) for band in bands],
        "running": [run.uuid for run in runs if run.status == RunStatus.RUNNING],
    }


def chart_configs(*, run: Run, metric_keys: Sequence[str]) -> list[dict[str, str]]:
    """One chart per metric key on the run page, all fed by the shared chart-data endpoint."""
    url = reverse("dashboard:chart-series")
    return [
        {
            "elementId": f"metric-chart-{index}",
            "key": key,
            "runId": run.uuid,
            "runName": run.name,
            "seriesUrl": url,
        }
        for index, key in enumerate(metric_keys)
    ]
