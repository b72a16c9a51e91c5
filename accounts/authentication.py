"""DRF authentication for `Authorization: Bearer <token>` (native API and the mlflow client)."""

from __future__ import annotations

from rest_framework import authentication, exceptions

from .services import user_for_token


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        scheme, _, raw = header.partition(" ")
        if scheme.lower() != self.keyword:
            return None
        raw = raw.strip()
        if not raw:
            raise exceptions.AuthenticationFailed("Empty bearer token.")
        user = user_for_token(raw)
        if user is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API token.")
        return user, raw

    def authenticate_header(self, request):
        return 'Bearer realm="api"'
