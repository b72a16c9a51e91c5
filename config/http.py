"""HTTP details that both APIs, the native one and MLflow's, read the same way."""

from __future__ import annotations

from typing import Any


def declared_body_size(request: Any) -> int | None:
    """The size a request announced for its body (Content-Length), when it announced one; a
    Django request and a DRF request both carry it in META."""
    value = request.META.get("CONTENT_LENGTH", "")
    return int(value) if value.isdigit() else None


def authorization(request: Any) -> tuple[str, str] | None:
    """The `Authorization` header as (scheme in lower case, credentials without surrounding
    blanks): `Bearer  abc ` → ("bearer", "abc"). None when the request sent no such header.

    The native API's token authentication and the MLflow API's both read it here, so a header
    one accepts the other reads the same way."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header:
        return None
    if isinstance(header, bytes):  # a test client may hand bytes over, as DRF allows
        header = header.decode("latin-1")
    scheme, _, credentials = header.partition(" ")
    return scheme.lower(), credentials.strip()
