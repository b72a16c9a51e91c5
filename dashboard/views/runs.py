"""Run pages: a run's detail page, its artifacts, and the chart-data endpoint every chart reads."""

from __future__ import annotations

import json
import posixpath

from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts.roles import Role, role_of
from config.exceptions import ApplicationError, InvalidInput
from registry import selectors as registry_selectors
from tracker import selectors
from tracker.models import RunStatus
from tracker.selectors.comparison import compared_runs, group_bands
from tracker.selectors.importance import param_importance
from tracker.selectors.previews import artifact_previews, image_type
from tracker.services import PARENT_RUN_TAG

from ..access import viewer_required
from ..chart_forms import ChartQueryForm, ImportanceQueryForm
from ..charts import chart_configs, chart_payload
from .audit import history_block
from .edits import NOTE_TAG, failure_reason


@require_GET
@viewer_required
def run_detail(request: HttpRequest, run_id: str) -> HttpResponse:
    run = selectors.get_run(user=request.user, run_id=run_id)
    data = selectors.run_detail(run=run)
    registered_as = registry_selectors.versions_of_run(run=run, user=request.user)
    context = {
        "run": run,
        "data": data,
        "tags": sorted(data.tags.items()),
        "note": data.tags.get(NOTE_TAG, ""),
        "parent_run_id": data.tags.get(PARENT_RUN_TAG, ""),
        "failure_reason": failure_reason(run=run, tags=data.tags),
        "previews": artifact_previews(artifacts=list(selectors.list_artifacts(run=run))),
        "environment_json": json.dumps(run.environment, indent=2, sort_keys=True) if run.environment else "",
        "charts": chart_configs(run=run, metric_keys=list(data.metrics)),
        # A running run's charts poll for new points, at most MAX_CHART_KEYS keys a request.
        "live": {"running": run.status == RunStatus.RUNNING, "keysPerRequest": selectors.MAX_CHART_KEYS},
        "registered_as": registered_as,
        "children": selectors.child_runs(run=run, user=request.user),
        "child_filter": f"tags.{PARENT_RUN_TAG} = '{run.uuid}'",
        "logged_models": [
            (model, [v for v in registered_as if v.logged_model_id == model.pk])
            for model in selectors.logged_models_of_run(run=run)
        ],
        "history": history_block(object_type="tracker.run", object_ids=[run.audit_id]),
        "can_edit": role_of(request.user) >= Role.CONTRIBUTOR,
    }
    return render(request, "dashboard/run_detail.html", context)


@require_GET
@viewer_required
def artifact_download(request: HttpRequest, run_id: str, path: str) -> FileResponse:
    """The file as a download; `?inline=1` shows an image in the page (never SVG or HTML)."""
    run = selectors.get_run(user=request.user, run_id=run_id)
    artifact = selectors.get_artifact(run=run, path=path)
    filename = posixpath.basename(artifact.path)
    content_type = image_type(artifact.path)
    if request.GET.get("inline") == "1" and content_type:
        response = FileResponse(artifact.file.open("rb"), filename=filename, content_type=content_type)
        response["Content-Security-Policy"] = "default-src 'none'"
        return response
    return FileResponse(artifact.file.open("rb"), as_attachment=True, filename=filename)


@require_GET
@viewer_required
def logged_model_artifact_download(
    request: HttpRequest, run_id: str, model_id: str, path: str
) -> FileResponse:
    """A file of a model the run logged (MLflow 3 keeps a model's files under the model)."""
    run = selectors.get_run(user=request.user, run_id=run_id)
    artifact = selectors.get_logged_model_artifact(run=run, model_id=model_id, path=path)
    return FileResponse(
        artifact.file.open("rb"), as_attachment=True, filename=posixpath.basename(artifact.path)
    )


def _form_error(form: ChartQueryForm | ImportanceQueryForm) -> JsonResponse:
    field, errors = next(iter(form.errors.items()))
    error = InvalidInput(errors[0], field=None if field == "__all__" else field)
    return JsonResponse(error.as_dict(), status=error.http_status)


@require_GET
@viewer_required
def chart_data(request: HttpRequest) -> JsonResponse:
    """Many runs and keys in one response, each series reduced to about `max_points` points."""
    form = ChartQueryForm(request.GET)
    if not form.is_valid():
        return _form_error(form)
    query = form.cleaned_data
    try:
        runs = compared_runs(run_ids=query["runs"], user=request.user, minimum=1)
        series = selectors.chart_series(
            runs=[data.run for data in runs],
            keys=query["keys"],
            max_points=query["max_points"] or selectors.DEFAULT_MAX_POINTS,
            x_range=form.x_range,
            after_step=query["after_step"],
        )
    except ApplicationError as error:
        return JsonResponse(error.as_dict(), status=error.http_status)
    bands = []
    if query["group_by"]:
        group_of = {data.run.uuid: data.params.get(query["group_by"], "") for data in runs}
        bands = group_bands(series=series, group_of=group_of)
    return JsonResponse(chart_payload(series=series, runs=[data.run for data in runs], bands=bands))


@require_GET
@viewer_required
def importance_data(request: HttpRequest) -> JsonResponse:
    """The compare page's parameter importance, fetched after the page is drawn (fitting the
    forest is the slowest part of it)."""
    form = ImportanceQueryForm(request.GET)
    if not form.is_valid():
        return _form_error(form)
    try:
        runs = compared_runs(run_ids=form.cleaned_data["runs"], user=request.user, minimum=1)
    except ApplicationError as error:
        return JsonResponse(error.as_dict(), status=error.http_status)
    importance = param_importance(runs=runs, metric=form.cleaned_data["metric"])
    return JsonResponse(
        {
            "metric": importance.metric,
            "runsUsed": importance.runs_used,
            "note": importance.note,
            "params": [
                {"key": p.key, "importance": p.importance, "correlation": p.correlation}
                for p in importance.params
            ],
        }
    )
