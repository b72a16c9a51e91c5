"""MLflow's wire protocol, once: authentication, reading a request message, errors, JSON out.

Handlers are plain functions `handler(call: Call, **path_args) -> dict | HttpResponse`. They
read fields through `Call` (which knows that GET sends the message as query parameters and
that DELETE may carry a JSON body), call services and selectors, and return the response
message. Nothing here knows about runs or models; tracker and registry list their endpoints
in tables of `Endpoint`s, and `url_patterns` turns a table into Django URL patterns.

Plain Django views rather than DRF: MLflow's protocol is RPC over protobuf JSON, not REST
resources, and the client's hot calls (log-batch, log-metric) should not pay for content
negotiation and serializers.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import HttpRequest, HttpResponse, QueryDict
from django.http.response import HttpResponseBase
from django.urls import URLPattern, path
from django.views.decorators.csrf import csrf_exempt

from accounts.callers import TokenCaller, user_of
from accounts.lockouts import is_locked_out, lockout_message
from accounts.roles import Role, role_of
from accounts.services import user_for_password, user_for_token
from config.exceptions import (
    AlreadyExists,
    ApplicationError,
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    TooLarge,
    Unauthenticated,
    refused_as_unsafe,
)
from config.http import authorization

# MLflow's error codes and statuses (mlflow/exceptions.py). A code the client does not know
# still reaches the user as text, but RESOURCE_DOES_NOT_EXIST and RESOURCE_ALREADY_EXISTS are
# branched on (get-by-name then create; register_model continues on an existing model).
_ERROR_CODES: dict[type[ApplicationError], tuple[str, int]] = {
    NotFound: ("RESOURCE_DOES_NOT_EXIST", 404),
    AlreadyExists: ("RESOURCE_ALREADY_EXISTS", 400),
    Conflict: ("INVALID_PARAMETER_VALUE", 400),
    TooLarge: ("INVALID_PARAMETER_VALUE", 400),
    PermissionDenied: ("PERMISSION_DENIED", 403),
    Unauthenticated: ("UNAUTHENTICATED", 401),
}
_NON_FINITE_IN = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


class MlflowError(ApplicationError):
    """An error with one of MLflow's own codes that no service raises (ENDPOINT_NOT_FOUND…)."""

    def __init__(self, message: str, *, error_code: str, http_status: int) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.http_status = http_status


def error_body(error: ApplicationError) -> tuple[dict[str, str], int]:
    code, status = _ERROR_CODES.get(type(error), (error.error_code, error.http_status))
    if isinstance(error, MlflowError):
        code, status = error.error_code, error.http_status
    elif status == 400:
        code = code if code == "RESOURCE_ALREADY_EXISTS" else "INVALID_PARAMETER_VALUE"
    message = error.message if getattr(error, "verbatim", False) else str(error)
    return {"error_code": code, "message": message}, status


def json_response(message: Any, status: int = 200) -> HttpResponse:
    return HttpResponse(orjson.dumps(message), status=status, content_type="application/json")


def error_response(error: ApplicationError) -> HttpResponse:
    body, status = error_body(error)
    response = json_response(body, status)
    if status == 401:
        response["WWW-Authenticate"] = 'Basic realm="Lab Ledger", charset="UTF-8"'
    return response


@contextmanager
def absent_is_fine(field: str) -> Iterator[None]:
    """MLflow's registry deletes of a tag or alias that is not there succeed silently; scripts
    rely on it. Only a NotFound about `field` itself is swallowed, never a missing model."""
    try:
        yield
    except NotFound as error:
        if error.field != field:
            raise


def omit_empty(message: dict[str, Any]) -> dict[str, Any]:
    """Drop unset fields as protobuf JSON does (None, "" and empty lists); 0 and False stay."""
    return {k: v for k, v in message.items() if v is not None and v != "" and v != []}


# Reading a request ------------------------------------------------------------------------


# MLflow's handlers end every message about a request field with this pointer.
_SEE_THE_DOCS = " See the API docs for more information about request parameters."
# A value echoed back in an error is cut here, so a huge field never comes back whole.
_SHOWN_VALUE_LIMIT = 200


def worded(error: ApplicationError) -> ApplicationError:
    """Mark an error whose message is MLflow's own text: sent as is, without the field prefix
    the rest of Lab Ledger puts in front (MLflow's texts name the field themselves)."""
    error.verbatim = True  # type: ignore[attr-defined]
    return error


@contextmanager
def in_mlflow_words(error_type: type[ApplicationError], field: str, message: str) -> Iterator[None]:
    """Re-say an error about `field` (a run or model not found, a name taken) in MLflow's own
    text, which scripts match on; the code and status stay, other errors pass unchanged."""
    try:
        yield
    except error_type as error:
        if error.field != field:
            raise
        raise worded(error_type(message, field=field)) from None


def invalid(name: str, value: Any) -> InvalidInput:
    """MLflow's wording for a field of the wrong type (handlers.py's schema check)."""
    shown = json.dumps(value, sort_keys=True, separators=(",", ":"))  # orjson stops at 64-bit ints
    if len(shown) > _SHOWN_VALUE_LIMIT:
        shown = shown[: _SHOWN_VALUE_LIMIT - 3] + "..."
    hint = f" Hint: Value was of type '{type(value).__name__}'."
    message = f"Invalid value {shown} for parameter '{name}' supplied: {hint}{_SEE_THE_DOCS}"
    return worded(InvalidInput(message, field=name))  # type: ignore[return-value]


def missing(name: str) -> InvalidInput:
    """MLflow's wording for a required field that was not sent."""
    message = f"Missing value for required parameter '{name}'.{_SEE_THE_DOCS}"
    return worded(InvalidInput(message, field=name))  # type: ignore[return-value]


class Call:
    """One MLflow request: who sent it, and typed access to the fields of its message.

    GET messages arrive as query parameters (every value a string, repeated keys for lists);
    other methods send a JSON object. Accessors accept both spellings and name the field in
    every error.
    """

    def __init__(self, request: HttpRequest, caller: Any, message: dict[str, Any] | QueryDict) -> None:
        self.request = request
        # The user, or for an endpoint that `checks_token` a `TokenCaller` whose write's
        # statement checks the token (accounts.callers); `user` looks that one up when needed.
        self.caller = caller
        self.message = message
        self._from_query = isinstance(message, QueryDict)

    @property
    def user(self) -> Any:
        return user_of(self.caller)

    def has(self, name: str) -> bool:
        return name in self.message

    def _value(self, name: str) -> Any:
        if self._from_query:
            values = self.message.getlist(name)
            return values[-1] if values else None
        return self.message.get(name)

    def string(self, name: str, *, required: bool = False, default: str = "") -> str:
        value = self._value(name)
        if value is None or value == "":
            if required:
                raise missing(name)
            return default
        if not isinstance(value, str):
            raise invalid(name, value)
        if "\x00" in value:  # PostgreSQL cannot store or even compare text holding NUL
            raise InvalidInput(f"'{name}' must not contain NUL characters", field=name)
        return value

    def optional_string(self, name: str) -> str | None:
        """None when the field was not sent (an update that leaves it alone), else its text."""
        return self.string(name) if self.has(name) and self._value(name) is not None else None

    def integer(
        self, name: str, *, required: bool = False, default: int | None = None, minimum: int | None = None
    ) -> int | None:
        value = self._value(name)
        if value is None or value == "":
            if required:
                raise missing(name)
            return default
        if isinstance(value, str):
            try:
                value = int(value)
            except ValueError:
                raise invalid(name, value) from None
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool) or not -(2**63) <= value < 2**63:
            raise invalid(name, value)
        if minimum is not None and value < minimum:
            raise InvalidInput(f"'{name}' must be at least {minimum}, got {value}", field=name)
        return value

    def boolean(self, name: str, *, default: bool = False) -> bool:
        value = self._value(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise invalid(name, value)

    def double(self, name: str, *, required: bool = False) -> float | None:
        value = self._value(name)
        if value is None:
            if required:
                raise missing(name)
            return None
        return parse_double(value, field=name)

    def strings(self, name: str) -> list[str]:
        if self._from_query:
            values = self.message.getlist(name)
        else:
            values = self.message.get(name) or []
            if isinstance(values, str):
                values = [values]
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise invalid(name, values)
        if any("\x00" in v for v in values):
            raise InvalidInput(f"'{name}' must not contain NUL characters", field=name)
        return values

    def objects(self, name: str) -> list[dict[str, Any]]:
        """A repeated message field (JSON bodies only; GET requests never carry one)."""
        values = [] if self._from_query else (self.message.get(name) or [])
        if not isinstance(values, list):
            raise invalid(name, values)
        for index, value in enumerate(values):
            if not isinstance(value, dict):
                raise invalid(f"{name}[{index}]", value)
        return values

    def run_id(self) -> str:
        """The run a call is about: 3.x clients send `run_id` and the legacy `run_uuid` both."""
        run_id = self.string("run_id") or self.string("run_uuid")
        if not run_id:
            raise missing("run_id")
        return run_id


def parse_double(value: Any, *, field: str) -> float:
    """A double as protobuf JSON writes it: a number, or "NaN", "Infinity", "-Infinity"."""
    if isinstance(value, float):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        special = _NON_FINITE_IN.get(value)
        if special is not None:
            return special
        try:
            return float(value)
        except ValueError:
            pass
    raise invalid(field, value)


# Authentication ---------------------------------------------------------------------------


def authenticated_user(request: HttpRequest) -> Any:
    """The user behind `Authorization: Bearer <token>` or `Basic <user:password>`, else 401."""
    header = authorization(request)
    scheme, credentials = header or ("", "")
    user = None
    if scheme == "bearer" and credentials:
        user = user_for_token(credentials)
    elif scheme == "basic" and credentials:
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthenticated("Malformed Basic credentials.") from None
        username, separator, password = decoded.partition(":")
        if separator:
            user = user_for_password(username, password, request=request)
            if user is None and is_locked_out(request):
                raise PermissionDenied(lockout_message(username))
    elif not header:
        raise Unauthenticated(
            "Authentication required: set MLFLOW_TRACKING_TOKEN to a Lab Ledger API token, "
            "or MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD."
        )
    if user is None:
        raise Unauthenticated("Invalid credentials: unknown or revoked token, or wrong username/password.")
    if role_of(user) < Role.VIEWER:
        raise PermissionDenied("Using Lab Ledger needs at least the viewer role.")
    return user


def _caller(request: HttpRequest, endpoint: Endpoint) -> Any:
    """The user, or a `TokenCaller` where the endpoint's write checks a bearer token itself."""
    if endpoint.checks_token:  # the header is read here only for the endpoints that may defer
        scheme, credentials = authorization(request) or ("", "")
        if scheme == "bearer" and credentials:
            return TokenCaller(credentials, lambda: authenticated_user(request))
    return authenticated_user(request)


# Routing ----------------------------------------------------------------------------------

Handler = Callable[..., "dict[str, Any] | HttpResponseBase"]


@dataclass(frozen=True)
class Endpoint:
    method: str  # GET, POST, PATCH, PUT or DELETE
    route: str  # a Django path pattern, relative to the prefix: "runs/get", "logged-models/<str:model_id>"
    handler: Handler
    raw_body: bool = False  # the handler reads the body itself (artifact uploads)
    # A bearer token is left to the handler's write to check in its own statement (call.caller).
    checks_token: bool = False


def _message(request: HttpRequest, endpoint: Endpoint) -> dict[str, Any] | QueryDict:
    if request.method == "GET" or endpoint.raw_body:
        return request.GET
    try:
        body = request.body
    except RequestDataTooBig:
        raise InvalidInput("The request body is larger than the server accepts.", field="body") from None
    if not body.strip():
        return {}
    try:
        message = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise InvalidInput(f"Malformed JSON in the request body: {error}", field="body") from None
    if not isinstance(message, dict):
        raise InvalidInput("The request body must be a JSON object.", field="body")
    return message


def _view(endpoints: dict[str, Endpoint]) -> Callable[..., HttpResponseBase]:
    allowed = ", ".join(sorted(endpoints))

    @csrf_exempt  # no cookies are read here: every call carries its own credentials
    def view(request: HttpRequest, **path_args: Any) -> HttpResponseBase:
        endpoint = endpoints.get(request.method or "")
        try:
            if endpoint is None:
                response = error_response(
                    MlflowError(
                        f"{request.method} is not supported at {request.path}; use {allowed}.",
                        error_code="ENDPOINT_NOT_FOUND",
                        http_status=405,
                    )
                )
                response["Allow"] = allowed
                return response
            caller = _caller(request, endpoint)
            try:
                result = endpoint.handler(Call(request, caller, _message(request, endpoint)), **path_args)
            except ApplicationError:
                user_of(caller)  # a bad token is refused as such, whatever else the request got wrong
                raise
        except ApplicationError as error:
            return error_response(error)
        except SuspiciousOperation as error:  # Django's generic 400 would be an HTML page
            return error_response(refused_as_unsafe(error))
        return result if isinstance(result, HttpResponseBase) else json_response(result)

    return view


def url_patterns(endpoints: Sequence[Endpoint]) -> list[URLPattern]:
    """One URL pattern per route, dispatching on the method; fixed routes before parametrised
    ones, so `logged-models/search` is not read as a model id."""
    by_route: dict[str, dict[str, Endpoint]] = {}
    for endpoint in endpoints:
        methods = by_route.setdefault(endpoint.route, {})
        if endpoint.method in methods:
            raise ValueError(f"{endpoint.method} {endpoint.route} is listed twice")
        methods[endpoint.method] = endpoint
    ordered = sorted(by_route, key=lambda route: "<" in route)
    return [path(route, _view(by_route[route])) for route in ordered]


# MLflow 3 areas Lab Ledger leaves out on purpose (docs/mlflow.md), by a word of their path.
_OUT_OF_SCOPE_AREAS = (
    ("trace", "traces and spans"),
    ("span", "traces and spans"),
    ("prompt", "prompt registry"),
    ("scorers", "scorers"),
    ("datasets", "evaluation datasets"),
    ("assessments", "assessments"),
    ("workspaces", "workspaces"),
    ("graphql", "GraphQL API"),
    ("gateway", "AI gateway"),
    ("endpoints", "AI gateway"),
    ("webhooks", "webhooks API (Lab Ledger's own webhooks are at /api/v1/webhooks)"),
)


def out_of_scope_area(path: str) -> str | None:
    """Which of MLflow's areas outside Lab Ledger's job a path belongs to, if any."""
    words = path.lower().replace("-", "/").replace("_", "/").split("/")
    return next((area for word, area in _OUT_OF_SCOPE_AREAS if any(w.startswith(word) for w in words)), None)


@csrf_exempt
def unknown_endpoint(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """Any MLflow path without a handler: MLflow's 404 JSON naming the endpoint, never HTML."""
    message = f"Lab Ledger does not implement {request.method} {request.path[:500]}."
    area = out_of_scope_area(request.path[:500])
    if area:
        message += f" It belongs to MLflow's {area}, which Lab Ledger does not serve (see docs/mlflow.md)."
    return error_response(MlflowError(message, error_code="ENDPOINT_NOT_FOUND", http_status=404))
