"""The Permissions pages of an experiment and of a registered model: who holds which level.

Everyone who may read the object sees the grants; MANAGE holders (and admins) change them.
The rules are in tracker.permissions and registry.permissions; a refusal is a 403 page.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.db import models
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from accounts.permissions import GrantKind, Level, default_level_for, get_grantee, level_of, parse_level
from config.exceptions import ApplicationError, PermissionDenied
from registry import selectors as registry_selectors
from registry.permissions import MODEL_GRANTS
from tracker import selectors as tracker_selectors
from tracker.permissions import EXPERIMENT_GRANTS

from ..access import viewer_required
from ..forms import GrantForm


def _change(request: HttpRequest, form: GrantForm, grants: GrantKind, obj: models.Model) -> bool:
    """Apply a valid form through the services; errors become messages, a refusal a 403."""
    if not form.is_valid():
        field, errors = next(iter(form.errors.items()))
        messages.error(request, f"{field}: {errors[0]}")
        return False
    data = form.cleaned_data
    try:
        grantee = get_grantee(username=data["username"])
        if data["remove"]:
            grants.delete(actor=request.user, obj=obj, grantee=grantee)
            messages.success(request, f"{grantee} now has the default permission.")
        else:
            level = parse_level(data["permission"])
            grants.set(actor=request.user, obj=obj, grantee=grantee, level=level)
            messages.success(request, f"{grantee} now holds {level.name}.")
    except PermissionDenied:
        raise
    except ApplicationError as error:
        messages.error(request, str(error))
        return False
    return True


def _page(request: HttpRequest, obj: models.Model, grants: Any, context: dict[str, Any]) -> HttpResponse:
    yours = level_of(request.user, obj)
    return render(
        request,
        "dashboard/permissions.html",
        {
            **context,
            "grants": grants,
            "your_level": yours.name,
            "default_level": default_level_for(type(obj), obj.pk).name,
            "can_manage": yours >= Level.MANAGE,
            "form": GrantForm(initial={"permission": "READ"}),
        },
    )


@require_http_methods(["GET", "POST"])
@viewer_required
def experiment_permissions(request: HttpRequest, experiment_id: int) -> HttpResponse:
    experiment = tracker_selectors.get_experiment(user=request.user, experiment_id=experiment_id)
    if request.method == "POST":
        _change(request, GrantForm(request.POST), EXPERIMENT_GRANTS, experiment)
        return redirect(reverse("dashboard:experiment-permissions", args=[experiment.pk]))
    grants = EXPERIMENT_GRANTS.list(user=request.user, obj=experiment)
    return _page(
        request, experiment, grants, {"experiment": experiment, "subject": f"experiment {experiment}"}
    )


@require_http_methods(["GET", "POST"])
@viewer_required
def model_permissions(request: HttpRequest, name: str) -> HttpResponse:
    model = registry_selectors.get_registered_model(user=request.user, name=name)
    if request.method == "POST":
        _change(request, GrantForm(request.POST), MODEL_GRANTS, model)
        return redirect(reverse("dashboard:model-permissions", args=[model.name]))
    grants = MODEL_GRANTS.list(user=request.user, obj=model)
    return _page(request, model, grants, {"model": model, "subject": f"registered model {model}"})
