"""HTTP details that both APIs, the native one and MLflow's, read the same way."""

from __future__ import annotations

from typing import Any


def declared_body_size(request: Any) -> int | None:
    """The size a request announced for its body (Content-Length), when it announced one; a
    Django request and a DRF request both carry it in META."""
    value = request.META.get("CONTENT_LENGTH", "")
    return int(value) if value.isdigit() else None
