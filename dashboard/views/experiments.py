"""The experiment list."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from accounts.roles import Role, role_of
from tracker import selectors
from tracker.models import DEFAULT_EXPERIMENT_ID, Lifecycle

from ..access import viewer_required
from ..forms import ListForm
from ..listing import list_page

# The orders of tracker.selectors.EXPERIMENT_ORDERS, as the list offers them.
EXPERIMENT_SORTS = {"name": "Name", "activity": "Last activity", "runs": "Most runs"}


@require_GET
@viewer_required
def experiment_list(request: HttpRequest) -> HttpResponse:
    form = ListForm(request.GET, orders=EXPERIMENT_SORTS, placeholder="Name, description or tag")
    listing = list_page(
        form, lambda text, order: selectors.list_experiments(user=request.user, text=text, order=order)
    )
    # Where the mlflow client's printed links (MLflow UI style, /#/experiments/…) should lead.
    mlflow_link_targets = {
        "experiment": reverse("dashboard:run-table", args=[0]),
        "run": reverse("dashboard:run-detail", args=["RUN_ID"]),
    }
    can_edit = role_of(request.user) >= Role.CONTRIBUTOR  # delete and restore (dashboard.views.edits)
    context = {
        "listing": listing,
        "experiments": listing.objects,
        "mlflow_link_targets": mlflow_link_targets,
        "can_edit": can_edit,
        "undeletable_id": DEFAULT_EXPERIMENT_ID,  # the service refuses; no button to refuse
        "deleted_experiments": selectors.list_experiments(user=request.user, lifecycle=Lifecycle.DELETED)
        if can_edit
        else [],
    }
    return render(request, "dashboard/experiment_list.html", context, status=listing.status)
