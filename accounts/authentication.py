"""The native API's two accounts plug-ins, named in REST_FRAMEWORK's settings: who the caller is
(`Authorization: Bearer <token>`) and whether they may use the API at all (the viewer role).

They live here rather than beside the API base view (config/api.py) so that config imports no
app: role logic stays in accounts, and DRF reaches it through the settings."""

from __future__ import annotations

from rest_framework import authentication, exceptions, permissions

from config.http import authorization

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
