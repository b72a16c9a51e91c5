"""The native API's base layer: the base view, how it parses and renders, its schema, routing.

Every /api/v1 view derives from `ApiView`. This module imports no app, so that every app's API
can build on it and dependencies point one way (apps → config). Who may call the API at all is
an accounts rule: `ApiView` leaves `permission_classes` to DRF's `DEFAULT_PERMISSION_CLASSES`,
which the settings set to `accounts.authentication.HasViewerRole` (reads need the viewer role;
each write is checked again, for the role it needs, by the service it calls), just as they name
the bearer-token authentication class.
"""

from __future__ import annotations

import inspect
import io
import re
from collections.abc import Callable
from typing import ClassVar

import orjson
from django.utils.cache import add_never_cache_headers
from drf_spectacular.drainage import isolate_view_method
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, parsers, renderers, serializers
from rest_framework.negotiation import BaseContentNegotiation, DefaultContentNegotiation
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from config.json_values import json_safe


class JSONRenderer(renderers.JSONRenderer):
    """Strict JSON: a bare `NaN` token is invalid JSON, so non-finite floats become strings."""

    def render(self, data, accepted_media_type=None, renderer_context=None):
        try:
            return super().render(data, accepted_media_type, renderer_context)
        except ValueError:
            # Only responses that hold a non-finite float pay for this second walk.
            return super().render(json_safe(data), accepted_media_type, renderer_context)


class _NoFormatParameter:
    """DRF's settings, less the `?format=` override: no /api/v1 answer comes in another format
    by it (the export reads its own `format`), so `?format=jsonl` on a JSON list is not a 404."""

    URL_FORMAT_OVERRIDE = None

    def __getattr__(self, name: str) -> object:
        return getattr(api_settings, name)


class JsonNegotiation(DefaultContentNegotiation):
    """DRF's negotiation by the Accept header, without `?format=`."""

    settings = _NoFormatParameter()


class IgnoreAcceptHeader(BaseContentNegotiation):
    """For file downloads: the body is the file whatever the client accepts; errors stay JSON."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


def json_kind(value: object) -> str:
    """How a wrong type is named in an error: "a number", "a list"…"""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


class StrictCharField(serializers.CharField):
    """The native API's text field: DRF's CharField turns 123 or 3.5 into "123" and "3.5", so a
    number sent for a name or a description would be stored as text; a wrong type is refused,
    naming the field, as docs/api.md says. Every serializer here uses it instead of CharField."""

    default_error_messages = {"not_a_string": "must be a string, not {kind}"}

    def to_internal_value(self, data: object) -> str:
        if not isinstance(data, str):
            self.fail("not_a_string", kind=json_kind(data))
        return super().to_internal_value(data)


class IdField(StrictCharField):
    """An integer id (an experiment's), sent as a JSON integer or a numeric string, as docs/api.md
    says; the service parses it. Any other type is refused like any text field's."""

    default_error_messages = {"not_a_string": "must be an integer or a numeric string, not {kind}"}

    def to_internal_value(self, data: object) -> str:
        if isinstance(data, int) and not isinstance(data, bool):
            data = str(data)
        return super().to_internal_value(data)


class ErrorSerializer(serializers.Serializer):
    """Every error: `message` starts with the field it is about, which `field` also names."""

    error_code = StrictCharField(help_text="e.g. INVALID_PARAMETER_VALUE, RESOURCE_DOES_NOT_EXIST")
    message = StrictCharField()
    field = StrictCharField(allow_null=True, help_text="e.g. metrics[12].value; null if none")


# What each error status means, documented on every operation that can answer with it (see
# ApiSchema.error_codes); a view whose errors differ lists its own in `error_responses`.
ERROR_RESPONSES = {
    400: "Bad input; `field` names it.",
    401: "No valid credentials.",
    403: "The user's role does not allow this.",
    404: "A resource in the path does not exist.",
}
WRITE_ERRORS = {409: "Conflicts with what is stored (a name taken, a param already logged)."}
BODY_ERRORS = {
    413: "The request body (or the uploaded file) is larger than the server accepts.",
    415: "The body's Content-Type is not one the operation reads (JSON; multipart for uploads).",
}


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """Tells the OpenAPI schema (and Swagger UI's Authorize button) about bearer tokens."""

    target_class = "accounts.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A per-user API token (`manage.py create_api_token USERNAME`).",
        }


class ApiSchema(AutoSchema):
    """Names operations and components after the one-operation view classes.

    `RunListApi.get` becomes operation `run_list`, and `RunCreateApi.InputSerializer` component
    `RunCreateInput`: every view has an `InputSerializer` and an `OutputSerializer`, which would
    collide if named by class name alone. Operations are grouped by the module that holds them.
    """

    def _operation_view(self) -> type:
        """The operation's own view class, also behind a `route()` resource; named after it, not
        after the class that defines its handler (shared handlers serve several operations)."""
        return getattr(self.view, "operation_views", {}).get(self.method.lower(), type(self.view))

    def get_operation_id(self):
        view_name = self._operation_view().__name__.removesuffix("Api")
        return re.sub(r"(?<!^)(?=[A-Z])", "_", view_name).lower()

    def get_tags(self):
        module = self._operation_view().__module__.split(".")
        return [module[-1] if module[-1] not in ("views", "api") else module[0]]

    def error_codes(self) -> dict[int, str]:
        """The error statuses this operation can answer with. Any request can lack credentials
        (401) or the role (403), and carry bad input (400); a path parameter can name nothing
        (404); a write can conflict with what is stored (409); a body can be too large (413) or of a
        type the operation does not read (415)."""
        codes = {code: ERROR_RESPONSES[code] for code in (400, 401, 403)}
        if "{" in self.path:
            codes[404] = ERROR_RESPONSES[404]
        if self.method in ("POST", "PUT", "PATCH"):
            codes |= {**WRITE_ERRORS, **BODY_ERRORS}
        return codes | getattr(self._operation_view(), "error_responses", {})

    def _get_response_bodies(self, direction="response"):
        # Merged here rather than in get_response_serializers, which @extend_schema(responses=...)
        # replaces: every operation, annotated or not, lists the error shapes it can answer with.
        responses = super()._get_response_bodies(direction)
        for code, text in sorted(self.error_codes().items()):
            if str(code) not in responses:
                error = OpenApiResponse(ErrorSerializer, description=text)
                responses[str(code)] = self._get_response_for_code(error, str(code), direction=direction)
        return responses

    def get_serializer_name(self, serializer, direction):
        parts = type(serializer).__qualname__.split(".")
        return "".join(part.removesuffix("Api").removesuffix("Serializer") for part in parts)


class FastJSONParser(parsers.JSONParser):
    """orjson for request bodies: a 1,000-point log-batch parses in a quarter of the time.

    A body orjson refuses goes to DRF's own parser, so what is accepted or refused, and the
    error message, stay exactly as before (e.g. `1e999` is still read as Infinity).
    """

    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
        try:
            return super().parse(io.BytesIO(raw), media_type, parser_context)
        except RecursionError:
            # orjson refuses more than 1,024 levels; Python's parser then runs out of stack.
            raise exceptions.ParseError("JSON nested too deeply") from None


class ApiView(APIView):
    """Base of every /api/v1 view: viewer role for reads (by the settings), strict JSON out, tidy
    schema names."""

    # Error statuses (and what they mean here) beyond those ApiSchema.error_codes derives.
    error_responses: ClassVar[dict[int, str]] = {}
    # permission_classes: DRF's DEFAULT_PERMISSION_CLASSES (accounts.authentication.HasViewerRole).
    parser_classes = [FastJSONParser]
    renderer_classes = [JSONRenderer]
    content_negotiation_class = JsonNegotiation
    schema = ApiSchema()

    def finalize_response(self, request, response, *args, **kwargs):
        """Every answer is for the caller who asked, and some hold a secret shown once (a new
        webhook's, a rotated one's): none is kept by a cache."""
        response = super().finalize_response(request, response, *args, **kwargs)
        if not response.has_header("Cache-Control"):
            add_never_cache_headers(response)
        return response


def route(**operations: type[APIView]) -> Callable:
    """Serve one URL with one view class per HTTP method: `route(get=RunListApi, post=RunCreateApi)`.

    Django matches URLs without looking at the method, so a small dispatcher class picks the
    operation's view. It carries each operation's handler (with its `extend_schema` annotation
    and the operation class's docstring) only so that drf-spectacular and OPTIONS see them; at
    run time the request goes straight to the operation's own view.
    """
    if len(operations) == 1:
        (view,) = operations.values()
        return view.as_view()
    views = {method: view.as_view() for method, view in operations.items()}
    if "get" in views:
        views.setdefault("head", views["get"])
    handlers = {}
    for method, view in operations.items():
        # The operation's own copy of an inherited handler, so that its description stays its own.
        handler = isolate_view_method(view, method)
        handlers[method] = extend_schema(description=inspect.getdoc(view))(handler)

    def dispatch(self, request, *args, **kwargs):
        view = views.get(request.method.lower())
        if view is None:  # OPTIONS, or a method no operation serves: authenticated 405 as JSON
            return ApiView.dispatch(self, request, *args, **kwargs)
        return view(request, *args, **kwargs)

    name = "".join(view.__name__.removesuffix("Api") for view in operations.values()) + "Resource"
    attributes = {**handlers, "dispatch": dispatch, "__doc__": None, "operation_views": operations}
    resource = type(name, (ApiView,), attributes)
    return resource.as_view()
