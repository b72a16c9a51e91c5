"""Request checks that hold for every path: the dashboard, the native API and the MLflow API."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse


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


def _field_with_nul(request: HttpRequest) -> str | None:
    """`path`, or the query parameter whose name or value holds a NUL character; None if none does."""
    if "\x00" in request.path:
        return "path"
    for key, values in request.GET.lists():
        if "\x00" in key or any("\x00" in value for value in values):
            return key.replace("\x00", "\\x00")
    return None
