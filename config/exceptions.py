"""One family of domain errors, translated once at each edge.

Services raise these; the DRF handler below, the MLflow adapter and dashboard forms turn them
into responses. Every error can name the field (or the line of an uploaded file) it is about.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response


class ApplicationError(Exception):
    """Base of every error a service raises on purpose; never a 5xx."""

    error_code = "INVALID_PARAMETER_VALUE"
    http_status = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message

    def as_dict(self) -> dict[str, Any]:
        return {"error_code": self.error_code, "message": str(self), "field": self.field}


class InvalidInput(ApplicationError):
    """Input that breaks a rule (a limit, a format, a type)."""


class TooLarge(InvalidInput):
    """A body (or an uploaded file) larger than the server accepts."""

    error_code = "REQUEST_TOO_LARGE"
    http_status = 413


class NotFound(ApplicationError):
    error_code = "RESOURCE_DOES_NOT_EXIST"
    http_status = 404


class AlreadyExists(ApplicationError):
    error_code = "RESOURCE_ALREADY_EXISTS"
    http_status = 409


class Conflict(ApplicationError):
    """The request contradicts what is stored (a param re-logged with another value)."""

    error_code = "RESOURCE_CONFLICT"
    http_status = 409


class PermissionDenied(ApplicationError):
    error_code = "PERMISSION_DENIED"
    http_status = 403


class Unauthenticated(ApplicationError):
    error_code = "UNAUTHENTICATED"
    http_status = 401


def refused_as_unsafe(exc: SuspiciousOperation) -> InvalidInput:
    """Django's SuspiciousOperation (a file name that is only dots, a path leaving its folder, too
    many fields) as a domain error. Its own message may hold a server path, so it is not repeated."""
    return InvalidInput(f"the request was refused as unsafe ({type(exc).__name__})")


def error_response(error: ApplicationError) -> Response:
    return Response(error.as_dict(), status=error.http_status)


def _first_drf_detail(detail: Any, prefix: str = "") -> tuple[str | None, str]:
    """Flatten DRF's nested error detail to (field path, first message)."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            if isinstance(key, int):  # DRF reports errors inside a list by position
                return _first_drf_detail(value, f"{prefix}[{key}]")
            name = key if key != "non_field_errors" else ""
            path = f"{prefix}.{name}" if prefix and name else (name or prefix)
            return _first_drf_detail(value, path)
    if isinstance(detail, list) and detail:
        for index, item in enumerate(detail):
            if item:
                if isinstance(item, (dict, list)):
                    return _first_drf_detail(item, f"{prefix}[{index}]")
                return prefix or None, str(item)
    return prefix or None, str(detail)


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF edge: domain errors and DRF's own errors share the {error_code, message, field} shape."""
    if isinstance(exc, ApplicationError):
        return error_response(exc)
    if isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE // (1024 * 1024)
        message = f"the request body is larger than the {limit} MiB limit"
        return error_response(TooLarge(message, field="body"))
    if isinstance(exc, SuspiciousOperation):  # Django's generic 400 would be an HTML page
        return error_response(refused_as_unsafe(exc))
    if isinstance(exc, Http404):
        return error_response(NotFound("Not found."))
    if isinstance(exc, DjangoPermissionDenied):
        return error_response(PermissionDenied("You do not have permission to do this."))
    if isinstance(exc, (drf_exceptions.NotAuthenticated, drf_exceptions.AuthenticationFailed)):
        response = error_response(Unauthenticated(str(exc.detail)))
        response["WWW-Authenticate"] = 'Bearer realm="api"'
        return response
    if isinstance(exc, drf_exceptions.PermissionDenied):
        return error_response(PermissionDenied(str(exc.detail)))
    if isinstance(exc, drf_exceptions.NotFound):
        return error_response(NotFound(str(exc.detail)))
    if isinstance(exc, drf_exceptions.ValidationError):
        field, message = _first_drf_detail(exc.detail)
        return error_response(InvalidInput(message, field=field))
    if isinstance(exc, drf_exceptions.ParseError):
        return error_response(InvalidInput(f"Malformed request body: {exc.detail}", field="body"))
    if isinstance(exc, drf_exceptions.APIException):
        body = {"error_code": exc.default_code.upper(), "message": str(exc.detail), "field": None}
        return Response(body, status=exc.status_code)
    return None
