"""Registry pages."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from registry.selectors import list_registered_models

from ..access import viewer_required


@require_GET
@viewer_required
def registry(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboard/registry.html", {"models": list_registered_models()})
