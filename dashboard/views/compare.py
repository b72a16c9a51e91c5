"""The compare page: 2 to 100 runs side by side; its whole state lives in the URL."""

from __future__ import annotations

from csp.decorators import csp_update
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from config.csp import PARALLEL_COORDINATES
from config.epoch import to_ms
from config.exceptions import InvalidInput
from config.json_values import finite_or_none
from tracker.selectors.comparison import compare_runs

from ..access import viewer_required
from ..chart_forms import X_AXES, CompareForm
from ..charts import run_colour
from ..forms import with_defaults_for

DEFAULT_KEYS = 5  # charts drawn when no key is chosen: the first few metric keys
# Everything but the runs: how they are drawn.
DISPLAY_CHOICES = ("keys", "x", "smoothing", "log", "group_by", "pc", "pc_metric", "sx", "sy", "im")
# What each of the page's forms sets itself (every form sends the runs and the charted keys). Each
# carries the other settings of the URL as hidden inputs, so pressing one keeps the rest.
FORM_SETTINGS = {
    "charts": ("x", "smoothing", "log", "group_by"),
    "parallel": ("pc", "pc_metric"),
    "scatter": ("sx", "sy"),
    "importance": ("im",),
}


@require_GET
@viewer_required
@csp_update(PARALLEL_COORDINATES)  # only this page draws parallel coordinates (config/csp.py)
def compare(request: HttpRequest) -> HttpResponse:
    form = with_defaults_for(CompareForm(request.GET), DISPLAY_CHOICES, request)
    if not form.is_valid():
        field, errors = next(iter(form.errors.items()))
        return render(request, "dashboard/compare.html", {"error": f"{field}: {errors[0]}"}, status=400)
    state = form.cleaned_data
    try:
        comparison = compare_runs(run_ids=state["runs"], user=request.user)
    except InvalidInput as error:
        return render(request, "dashboard/compare.html", {"error": str(error)}, status=400)
    keys = [key for key in state["keys"] if key in comparison.metric_keys] or comparison.metric_keys[
        :DEFAULT_KEYS
    ]
    runs = [
        {
            "id": data.run.uuid,
            "name": data.run.name,
            "colour": run_colour(index),
            "status": data.run.status,
            "startTime": to_ms(data.run.start_time),
            "url": reverse("dashboard:run-detail", args=[data.run.uuid]),
            "params": data.params,
            # Plotted values: NaN and ±Infinity have no place on an axis (and no JSON token).
            "metrics": {key: finite_or_none(metric.value) for key, metric in data.metrics.items()},
        }
        for index, data in enumerate(comparison.runs)
    ]
    # Parallel coordinates and the scatter start on the params that differ between the runs and
    # on a charted metric that every run has.
    axes = comparison.varying_param_keys or comparison.param_keys
    shared = comparison.shared_metric_keys
    measure = ([key for key in keys if key in shared] or shared or keys or [""])[0]
    config = {
        "seriesUrl": reverse("dashboard:chart-series"),
        "runs": runs,
        "keys": keys,
        "x": state["x"] or "step",
        "smoothing": state["smoothing"] or 0,
        "log": state["log"],
        "groupBy": state["group_by"] if state["group_by"] in comparison.param_keys else "",
        "pc": [key for key in state["pc"] if key in comparison.param_keys] or axes[:4],
        "pcMetric": state["pc_metric"] if state["pc_metric"] in comparison.metric_keys else measure,
        "sx": state["sx"] or (f"params.{axes[0]}" if axes else ""),
        "sy": state["sy"] if state["sy"] in comparison.metric_keys else measure,
        "importanceUrl": reverse("dashboard:param-importance"),
        "im": state["im"] if state["im"] in comparison.metric_keys else measure,
    }
    context = {
        "form": form,
        "comparison": comparison,
        "runs": list(zip(comparison.runs, runs, strict=True)),
        "keys": keys,
        "config": config,
        "x_axes": X_AXES,
        "carried": _carried(form.data),
    }
    return render(request, "dashboard/compare.html", context)


def _carried(query: QueryDict) -> dict[str, list[tuple[str, str]]]:
    """Per form, the settings of the URL it does not set itself, as (name, value) pairs."""
    settings = [
        (name, value) for name in DISPLAY_CHOICES if name != "keys" for value in query.getlist(name) if value
    ]
    return {
        form: [(name, value) for name, value in settings if name not in own]
        for form, own in FORM_SETTINGS.items()
    }
