"""The run table: filter, sort, choose columns and page through an experiment's runs."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from config.exceptions import InvalidInput
from tracker import selectors

from ..access import viewer_required
from ..forms import PAGE_SIZES, RunTableForm
from ..tables import RunTable, choose_columns


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
    }
    return render(request, "dashboard/run_table.html", context, status=400 if form.errors else 200)
