"""Creating, checking and revoking API tokens; assigning roles."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from audit.services import record_event
from config.exceptions import NotFound, PermissionDenied

from .models import ApiToken
from .roles import Role, remember_role, role_rank_expression

TOKEN_PREFIX = "llt_"


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def create_api_token(*, user: Any, name: str = "default") -> tuple[ApiToken, str]:
    """Make a token and return it with its plain text, which is never stored or shown again."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user, name=name[:100] or "default", prefix=raw[:12], token_hash=hash_token(raw)
        )
        record_event(actor=user, action="api_token.created", target=token, after={"name": token.name})
    return token, raw


def revoke_api_token(*, user: Any, token_id: int) -> ApiToken:
    """Revoke one of the user's own tokens (admins may revoke anyone's)."""
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().filter(pk=token_id).first()
        if token is None:
            raise NotFound(f"API token {token_id} does not exist.", field="token_id")
        if token.user_id != user.pk and not user.is_superuser:
            raise PermissionDenied("You can only revoke your own tokens.")
        if token.revoked_at is None:
            token.revoked_at = timezone.now()
            token.save(update_fields=["revoked_at"])
            record_event(actor=user, action="api_token.revoked", target=token, after={"name": token.name})
    return token


def user_for_token(raw: str) -> Any | None:
    """The active user a token belongs to, or None for an unknown or revoked token.

    One query fetches the token, its user and the user's role: this runs on every API call.
    """
    token = (
        ApiToken.objects.select_related("user")
        .filter(token_hash=hash_token(raw), revoked_at__isnull=True)
        .annotate(role_rank=role_rank_expression("user__groups__name"))
        .first()
    )
    if token is None or not token.user.is_active:
        return None
    user = token.user
    remember_role(user, Role.ADMIN if user.is_superuser else Role(token.role_rank or Role.NONE))
    now = timezone.now()
    # Touch last_used_at at most once a minute so hot paths don't write on every request.
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return user


# Password hashing costs ~0.3 s by design; a training script sends Basic credentials with every
# call, so a verified pair is remembered briefly (keyed by an HMAC, never the password itself).
PASSWORD_CHECK_TTL_SECONDS = 300


def _credential_cache_key(username: str, password: str) -> str:
    digest = hmac.new(
        settings.SECRET_KEY.encode(), f"{username}\0{password}".encode(), hashlib.sha256
    ).hexdigest()
    return f"basic-auth:{digest}"


def user_for_password(username: str, password: str) -> Any | None:
    """The active user for HTTP Basic credentials (the mlflow client's username/password).

    An API token is accepted as the password too, so a CI job can use Basic auth without a
    person's password.
    """
    if password.startswith(TOKEN_PREFIX):
        user = user_for_token(password)
        return user if user is not None and user.get_username() == username else None
    key = _credential_cache_key(username, password)
    remembered = cache.get(key)
    if remembered is not None:
        user_pk, password_hash = remembered
        user = get_user_model().objects.filter(pk=user_pk, is_active=True).first()
        # A changed password changes the stored hash, which voids what was remembered.
        if user is not None and user.password == password_hash:
            return user
    user = authenticate(username=username, password=password)
    if user is None:
        return None
    cache.set(key, (user.pk, user.password), PASSWORD_CHECK_TTL_SECONDS)
    return user


def ensure_role_groups() -> None:
    """Create the role groups if they are missing (idempotent)."""
    for role in Role:
        if role is not Role.NONE:
            Group.objects.get_or_create(name=role.group_name)


def assign_role(*, user: Any, role: Role, actor: Any = None) -> None:
    """Add the role's group to the user; audited, since roles decide who may change what.

    `actor` is None for the command line and the demo seed (recorded as "system").
    """
    ensure_role_groups()
    with transaction.atomic():
        user.groups.add(Group.objects.get(name=role.group_name))
        user.__dict__.pop("_labledger_role", None)
        record_event(
            actor=actor,
            action="user.role_assigned",
            object_type="auth.user",
            object_id=user.get_username(),
            after={"role": role.group_name},
        )
