"""/api: the native REST API (v1), its OpenAPI schema and its docs page.

The docs page loads Swagger UI from the drf-spectacular-sidecar package's static files
(SPECTACULAR_SETTINGS SWAGGER_UI_DIST = "SIDECAR"), never from a CDN. There is no Redoc page:
drf-spectacular's Redoc template loads web fonts from Google.
"""

from csp.decorators import csp_update
from django.http import JsonResponse
from django.urls import include, path, re_path
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from accounts.api import MeApi
from config.csp import swagger_ui_policy


@csrf_exempt
@never_cache  # as every API answer (ApiView.finalize_response)
def unknown_endpoint(request, *args, **kwargs):
    """An unmatched /api/v1 URL gets the API's JSON error shape, not Django's HTML 404 page, for
    every method: it changes nothing, so a POST without a CSRF token gets the same 404."""
    body = {
        "error_code": "RESOURCE_DOES_NOT_EXIST",
        "message": f"There is no API endpoint at {request.path}.",
        "field": None,
    }
    return JsonResponse(body, status=404)


urlpatterns = [
    path("v1/me", MeApi.as_view(), name="api-me"),
    path("v1/", include("tracker.api.urls")),
    path("v1/", include("registry.api.urls")),
    path("v1/", include("audit.api.urls")),
    re_path(r"^v1/", unknown_endpoint),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's start-up script as a file: no inline script (config/csp.py).
    path(
        "docs/",
        csp_update(swagger_ui_policy())(SpectacularSwaggerSplitView.as_view(url_name="api-schema")),
        name="api-docs",
    ),
]
