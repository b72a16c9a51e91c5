"""Helpers shared by the API tests."""

from __future__ import annotations

from urllib.parse import quote


def error(response) -> dict:
    """The JSON error body, checked to have exactly the API's three keys."""
    body = response.json()
    assert set(body) == {"error_code", "message", "field"}, body
    return body


def url(template: str, **parts: object) -> str:
    """`/api/v1/...` with each part percent-encoded as one path segment (names may hold spaces)."""
    return "/api/v1/" + template.format(**{k: quote(str(v), safe="") for k, v in parts.items()})
