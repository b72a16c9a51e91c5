"""What holds for every path (the dashboard, the native API and the MLflow API): the request
checks, and the Content-Security-Policy header."""

from __future__ import annotations

from collections.abc import Callable

from csp.constants import HEADER
from csp.middleware import CheckableLazyObject, CSPMiddleware
from csp.utils import build_policy
from django.conf import settings
from django.db import OperationalError
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.http.response import HttpResponseBase
from django.utils.cache import add_never_cache_headers

# What a view or decorator (csp_update, csp_replace, csp_exempt...) sets on a response to change
# its policy; a response with none of them gets the settings' policy unchanged.
_TAILORING_ATTRIBUTES = tuple(
    f"_csp_{kind}{suffix}" for kind in ("config", "update", "replace", "exempt") for suffix in ("", "_ro")
)


class RefuseNulCharacters:
    """Answer 400 to a URL whose path or query string holds a NUL character.

    No id, name or filter can contain one, and PostgreSQL refuses NUL in any text parameter, so
    such a value would otherwise surface as a server error in whichever lookup met it first.
    JSON bodies are checked where they are read (the services' validators and MLflow's `Call`).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        field = _field_with_nul(request)
        if field is None:
            return self.get_response(request)
        message = f"{field}: '{field}' must not contain NUL characters"
        if request.path.startswith("/api/"):
            body = {"error_code": "INVALID_PARAMETER_VALUE", "message": message, "field": field}
            return JsonResponse(body, status=400)
        return HttpResponseBadRequest(message)


class DatabaseBusy:
    """A 503 with Retry-After, not a server error, when SQLite's single write lock stayed taken
    past its busy timeout (the embedded default: a large upload's final transaction holds it).
    The mlflow client and careful scripts retry a 503; PostgreSQL has no such lock."""

    RETRY_AFTER_SECONDS = 5

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, OperationalError) or not any(
            words in str(exception) for words in ("database is locked", "database table is locked")
        ):
            return None
        message = (
            "the database is busy with another write (SQLite takes one at a time); retry in a few seconds"
        )
        response: HttpResponse
        # The APIs, and the pages' own JSON (chart series, upload status, counts), answer in JSON.
        wants_json = "application/json" in request.headers.get("Accept", "")
        if wants_json or request.path.startswith(("/api/", "/ajax-api/")):
            body = {"error_code": "TEMPORARILY_UNAVAILABLE", "message": message, "field": None}
            response = JsonResponse(body, status=503)
        else:
            response = HttpResponse(message, status=503, content_type="text/plain; charset=utf-8")
        response["Retry-After"] = str(self.RETRY_AFTER_SECONDS)
        add_never_cache_headers(response)  # as every API answer
        return response


def _field_with_nul(request: HttpRequest) -> str | None:
    """`path`, or the query parameter whose name or value holds a NUL character; None if none does."""
    if "\x00" in request.path:
        return "path"
    for key, values in request.GET.lists():
        if "\x00" in key or any("\x00" in value for value in values):
            return key.replace("\x00", "\\x00")
    return None


class ContentSecurityPolicy(CSPMiddleware):
    """django-csp's middleware, with the settings' own policy built once per process.

    Nearly every response carries that policy unchanged, and django-csp builds it again for each
    one (a copy of every directive, a sort and a join, for the policy and for the report-only
    one): about 35 µs of every request on a fast machine, as much as Django's whole routing. A
    response a view tailored, a request that took a nonce, a report-only policy, excluded
    prefixes or DEBUG's error pages go through django-csp's own `process_response`.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        super().__init__(get_response)
        self._settings_policy = settings.CONTENT_SECURITY_POLICY  # what the built header is for
        # Excluded prefixes make the header depend on the path: no single header then.
        self._header = "" if "EXCLUDE_URL_PREFIXES" in self._settings_policy else build_policy()

    def process_response(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        if not self._plain(request, response):
            return super().process_response(request, response)
        if HEADER not in response:
            response[HEADER] = self._header
        # As django-csp does: a nonce asked for once the header is written could not be in it.
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)  # type: ignore[attr-defined]
        return response

    def _plain(self, request: HttpRequest, response: HttpResponseBase) -> bool:
        """Whether this response gets exactly the policy built at start-up."""
        return (
            bool(self._header)
            and settings.CONTENT_SECURITY_POLICY is self._settings_policy
            and not getattr(settings, "CONTENT_SECURITY_POLICY_REPORT_ONLY", None)
            and not settings.DEBUG
            and getattr(request, "_csp_nonce", None) is None
            and not any(hasattr(response, name) for name in _TAILORING_ATTRIBUTES)
        )
