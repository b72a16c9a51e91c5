"""Run pages: a run's detail page, its artifacts and its chart data."""

from __future__ import annotations

import json
import posixpath

from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from config.exceptions import ApplicationError, InvalidInput
from tracker import selectors

from ..access import viewer_required
from ..charts import chart_configs, series_payload
from ..forms import DEFAULT_MAX_POINTS, SeriesQueryForm


@require_GET
@viewer_required
def run_detail(request: HttpRequest, run_id: str) -> HttpResponse:
    run = selectors.get_run(run_id=run_id)
    data = selectors.run_detail(run=run)
    context = {
        "run": run,
        "data": data,
        "tags": sorted(data.tags.items()),
        "artifacts": selectors.list_artifacts(run=run),
        "environment_json": json.dumps(run.environment, indent=2, sort_keys=True) if run.environment else "",
        "charts": chart_configs(run=run, metric_keys=list(data.metrics)),
    }
    return render(request, "dashboard/run_detail.html", context)


@require_GET
@viewer_required
def artifact_download(request: HttpRequest, run_id: str, path: str) -> FileResponse:
    run = selectors.get_run(run_id=run_id)
    artifact = selectors.get_artifact(run=run, path=path)
    filename = posixpath.basename(artifact.path)
    return FileResponse(artifact.file.open("rb"), as_attachment=True, filename=filename)


@require_GET
@viewer_required
def metric_series(request: HttpRequest, run_id: str, key: str) -> JsonResponse:
    form = SeriesQueryForm(request.GET)
    if not form.is_valid():
        field, errors = next(iter(form.errors.items()))
        error = InvalidInput(errors[0], field=None if field == "__all__" else field)
        return JsonResponse(error.as_dict(), status=error.http_status)
    try:
        series = selectors.metric_series(
            run=selectors.get_run(run_id=run_id),
            key=key,
            max_points=form.cleaned_data["max_points"] or DEFAULT_MAX_POINTS,
            x_range=form.x_range,
        )
    except ApplicationError as error:
        return JsonResponse(error.as_dict(), status=error.http_status)
    return JsonResponse(series_payload(series))
