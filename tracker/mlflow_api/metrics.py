"""MLflow endpoints: a metric's full history, and sampled histories of several runs."""

from __future__ import annotations

import math
from typing import Any

from config.exceptions import InvalidInput
from config.json_values import json_float
from tracker import selectors
from tracker.models import Run
from tracker.permissions import require_run_readable

from .protocol import Call, Endpoint, missing
from .runs import run_ref, valid_run_id

# The mlflow client asks for pages of 25,000 points; one that names no size gets the same.
DEFAULT_HISTORY_PAGE = 25_000


def get_metric_history(call: Call) -> dict[str, Any]:
    run = run_ref(call.run_id(), call.user)
    require_run_readable(call.user, run, action="Reading a metric history")
    history = selectors.metric_history(
        run=run,
        key=call.string("metric_key", required=True),
        max_results=call.integer("max_results", default=DEFAULT_HISTORY_PAGE),
        page_token=call.string("page_token") or None,
    )
    key, isfinite = history.key, math.isfinite
    # Up to 50,000 points per page: dicts straight from the rows, json_float only for NaN/±inf.
    metrics = [
        {"key": key, "value": value if isfinite(value) else json_float(value), "timestamp": ts, "step": step}
        for step, ts, value in history.points
    ]
    response: dict[str, Any] = {"metrics": metrics}
    if history.next_page_token:
        response["next_page_token"] = history.next_page_token
    return response


def _runs(call: Call) -> list[Run]:
    run_ids = call.strings("run_ids")
    if not run_ids:
        raise missing("run_ids")
    if len(run_ids) > selectors.MAX_SAMPLED_RUNS:
        raise InvalidInput(
            f"at most {selectors.MAX_SAMPLED_RUNS} runs at once, got {len(run_ids)}", field="run_ids"
        )
    return selectors.get_runs(run_ids=[valid_run_id(run_id, "run_ids") for run_id in run_ids], user=call.user)


def get_metric_history_bulk_interval(call: Call) -> dict[str, Any]:
    key = call.string("metric_key", required=True)
    samples = selectors.metric_samples(
        runs=_runs(call),
        key=key,
        max_points=call.integer("max_results", default=selectors.MAX_SAMPLES_PER_RUN),
        step_range=(call.integer("start_step"), call.integer("end_step")),
    )
    return {
        "metrics": [
            {"key": key, "value": json_float(value), "timestamp": ts, "step": step, "run_id": run_id}
            for run_id, step, ts, value in samples
        ]
    }


ENDPOINTS: list[Endpoint] = [
    Endpoint("GET", "metrics/get-history", get_metric_history),
    Endpoint("GET", "metrics/get-history-bulk-interval", get_metric_history_bulk_interval),
]
