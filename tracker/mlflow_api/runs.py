"""MLflow endpoints: runs."""

from __future__ import annotations

from .protocol import Endpoint

ENDPOINTS: list[Endpoint] = []
