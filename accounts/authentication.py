"""The native API's accounts plug-ins: who the caller is (`Authorization: Bearer <token>`) and
whether they may use the API at all (the viewer role), named in REST_FRAMEWORK's settings; and
`ChecksTokenInStatement`, for the hot writes that check a bearer token themselves.

They live here rather than beside the API base view (config/api.py) so that config imports no
app: role logic stays in accounts, and DRF reaches it through the settings."""

from __future__ import annotations

from rest_framework import authentication, exceptions, permissions

from config.http import authorization

from .callers import TokenCaller, user_of
from .roles import Role, role_of
from .services import user_for_token


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "bearer"

    def authenticate(self, request):
        scheme, raw = authorization(request) or ("", "")
        if scheme != self.keyword:
            return None
        if not raw:
            raise exceptions.AuthenticationFailed("Empty bearer token.")
        user = user_for_token(raw)
        if user is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API token.")
        return user, raw

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


class HasViewerRole(permissions.BasePermission):
    """An authenticated user with at least the viewer role; anonymous requests get 401."""

    message = "Using the API needs the viewer role."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if user is None or not user.is_authenticated:
            return False  # DRF answers NotAuthenticated (401) when no authenticator succeeded
        return role_of(user) >= Role.VIEWER


class ChecksTokenInStatement:
    """A mixin for an API view whose write checks a bearer token in its own statement
    (accounts.callers): `request.caller` is then a `TokenCaller`, and DRF's authentication and
    permission checks run only when something looks the user up (`user_of`). Other requests
    (session cookies, no credentials) are checked first, as everywhere, and `request.caller` is
    their user. Whatever goes wrong, a bad token is refused as such: 401 before 400."""

    def perform_authentication(self, request):
        scheme, raw = authorization(request) or ("", "")
        if scheme == BearerTokenAuthentication.keyword and raw:
            request.caller = TokenCaller(raw, lambda: self._checked_user(request))
            return
        super().perform_authentication(request)  # type: ignore[misc]
        request.caller = request.user

    def check_permissions(self, request):
        if not isinstance(request.caller, TokenCaller):
            super().check_permissions(request)  # type: ignore[misc]

    def _checked_user(self, request):
        user = request.user  # DRF's authenticators: AuthenticationFailed where the token is bad
        super().check_permissions(request)  # type: ignore[misc]
        return user

    def handle_exception(self, exc):
        caller = getattr(self.request, "caller", None)  # type: ignore[attr-defined]
        if isinstance(caller, TokenCaller) and not caller.looked_up:
            try:
                user_of(caller)
            except exceptions.APIException as refusal:
                exc = refusal
        return super().handle_exception(exc)  # type: ignore[misc]
