"""Run pages: the run table, a run's detail page, its artifacts and its chart data."""

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
from ..forms import DEFAULT_MAX_POINTS, PAGE_SIZES, RunTableForm, SeriesQueryForm
from ..registry_pages import registered_versions
from ..tables import RunTable, choose_columns
from .audit import history_block


@require_GET
@viewer_required
def run_table(request: HttpRequest, experiment_id: int) -> HttpResponse:
    experiment = selectors.get_experiment(experiment_id=experiment_id)
    form = RunTableForm(request.GET)
    order_by = [item for item in request.GET.getlist("order_by") if item.strip()]
    page_token = request.GET.get("page_token") or None
    page = None
    if form.is_valid():
        try:
            page = selectors.search_runs(
                experiment_ids=[experiment.pk],
                filter_string=form.cleaned_data["filter"],
                order_by=order_by,
                max_results=form.cleaned_data["page_size"],
                page_token=page_token,
            )
        except InvalidInput as error:
            # A filter error sits next to the filter box; the others (order_by, page_token) above the table.
            if error.field == "filter":
                form.add_error("filter", error.message)
            else:
                form.add_error(None, str(error))
    table = choices = None
    if page is not None:
        picked = request.GET.getlist("columns") if "columns_set" in request.GET else None
        choices = choose_columns(param_keys=page.param_keys, metric_keys=page.metric_keys, chosen=picked)
        table = RunTable(
            page.runs,
            param_keys=[c.key for c in choices if c.kind == "param" and c.shown],
            metric_keys=[c.key for c in choices if c.kind == "metric" and c.shown],
            query=request.GET,
            order_by=order_by,
        )
    context = {
        "experiment": experiment,
        "form": form,
        "order_by": order_by,
        "page": page,
        "page_token": page_token,
        "page_sizes": PAGE_SIZES,
        "page_size": form.cleaned_data.get("page_size", PAGE_SIZES[0]),
        "table": table,
        "column_choices": choices,
        "history": history_block(object_type="tracker.experiment", object_ids=[str(experiment.pk)]),
    }
    return render(request, "dashboard/run_table.html", context, status=400 if form.errors else 200)


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
        "registered_as": registered_versions(run=run),
        "history": history_block(object_type="tracker.run", object_ids=[run.audit_id]),
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
