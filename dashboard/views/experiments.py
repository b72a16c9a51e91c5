"""The experiment list."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from tracker import selectors

from ..access import viewer_required


@require_GET
@viewer_required
def experiment_list(request: HttpRequest) -> HttpResponse:
    experiments = selectors.list_experiments()
    # Where the mlflow client's printed links (MLflow UI style, /#/experiments/…) should lead.
    mlflow_link_targets = {
        "experiment": reverse("dashboard:run-table", args=[0]),
        "run": reverse("dashboard:run-detail", args=["RUN_ID"]),
    }
    context = {"experiments": experiments, "mlflow_link_targets": mlflow_link_targets}
    return render(request, "dashboard/experiment_list.html", context)
