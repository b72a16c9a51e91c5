"""Creating, checking and revoking API tokens; assigning roles."""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.models import Group, User
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from audit.services import record_event
from config.exceptions import NotFound, PermissionDenied

from .models import ApiToken
from .roles import ROLE_GROUPS, Role, remember_role, role_of

TOKEN_PREFIX = "llt_"


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def create_api_token(*, user: User, name: str = "default") -> tuple[ApiToken, str]:
    """Make a token and return it with its plain text, which is never stored or shown again."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user, name=name[:100] or "default", prefix=raw[:12], token_hash=hash_token(raw)
        )
        record_event(actor=user, action="api_token.created", target=token, after={"name": token.name})
    return token, raw


def revoke_api_token(*, user: User, token_id: int) -> ApiToken:
    """Revoke one of the user's own tokens (admins, by role, may revoke anyone's)."""
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().filter(pk=token_id).first()
        if token is None:
            raise NotFound(f"API token {token_id} does not exist.", field="token_id")
        if token.user_id != user.pk and role_of(user) < Role.ADMIN:
            raise PermissionDenied("You can only revoke your own tokens.")
        if token.revoked_at is None:
            token.revoked_at = timezone.now()
            token.save(update_fields=["revoked_at"])
            record_event(actor=user, action="api_token.revoked", target=token, after={"name": token.name})
    return token


@functools.cache
def _token_user_sql() -> str:
    """The user behind a token hash, with the token's id, whether last_used_at is stale, and the
    user's highest role rank, in one statement.

    Written as SQL because this runs on every API call: the ORM spent about a millisecond per
    request compiling the same grouped, annotated query.
    """
    user_model = get_user_model()
    groups = user_model.groups.field
    memberships = user_model.groups.through._meta.db_table
    ranks = " ".join(f"WHEN '{name}' THEN {int(role)}" for name, role in ROLE_GROUPS.items())
    return (
        f"SELECT u.*, t.id AS token_id, "
        f"(t.last_used_at IS NULL OR t.last_used_at < %s) AS token_stale, "
        f"COALESCE((SELECT MAX(CASE g.name {ranks} ELSE 0 END) "
        f"FROM {memberships} ug "
        f"JOIN {Group._meta.db_table} g ON g.id = ug.{groups.m2m_reverse_name()} "
        f"WHERE ug.{groups.m2m_column_name()} = u.id), 0) AS role_rank "
        f"FROM {ApiToken._meta.db_table} t JOIN {user_model._meta.db_table} u ON u.id = t.user_id "
        f"WHERE t.token_hash = %s AND t.revoked_at IS NULL"
    )


def user_for_token(raw: str) -> Any | None:
    """The active user a token belongs to, or None for an unknown or revoked token.

    One query fetches the token, its user and the user's role: this runs on every API call.
    """
    now = timezone.now()
    # Touch last_used_at at most once a minute so hot paths don't write on every request.
    stale_before = now - timedelta(seconds=60)
    rows = get_user_model().objects.raw(_token_user_sql(), [stale_before, hash_token(raw)])
    user: Any = next(iter(rows), None)  # a User carrying token_id, token_stale and role_rank
    if user is None or not user.is_active:
        return None
    remember_role(user, Role.ADMIN if user.is_superuser else Role(user.role_rank or Role.NONE))
    if user.token_stale:
        ApiToken.objects.filter(pk=user.token_id).update(last_used_at=now)
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


def assign_role(*, user: User, role: Role, actor: User | None = None) -> None:
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
