"""Reads of accounts data."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from .models import ApiToken


def list_api_tokens(*, user: Any) -> QuerySet[ApiToken]:
    """The user's tokens, newest first, revoked ones included so the history stays visible."""
    return ApiToken.objects.filter(user=user).order_by("-created_at")
