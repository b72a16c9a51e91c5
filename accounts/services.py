"""Creating, checking and revoking API tokens; assigning roles; the users MLflow's calls manage."""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from typing import Any

from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_credentials
from django.conf import settings
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.models import Group, User
from django.contrib.auth.password_validation import validate_password
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.http import HttpRequest
from django.utils import timezone

from audit.services import record_event
from config.db import prepared_cursor
from config.exceptions import AlreadyExists, InvalidInput, NotFound, PermissionDenied

from .models import ApiToken
from .roles import Role, group_rank_sql, remember_role, require_role, role_of

TOKEN_PREFIX = "llt_"
# A token's last_used_at is touched at most this often, so hot paths don't write on every request.
TOKEN_TOUCH_INTERVAL = timedelta(seconds=60)


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
    return (
        f"SELECT {', '.join(f'u.{field.column}' for field in user_model._meta.concrete_fields)}, "
        f"t.id AS token_id, "
        f"(t.last_used_at IS NULL OR t.last_used_at < %s) AS token_stale, "
        f"{group_rank_sql('u.id')} AS role_rank "
        f"FROM {ApiToken._meta.db_table} t JOIN {user_model._meta.db_table} u ON u.id = t.user_id "
        f"WHERE t.token_hash = %s AND t.revoked_at IS NULL"
    )


def _user_fields() -> list[str]:
    return [field.attname for field in get_user_model()._meta.concrete_fields]


def _token_user(stale_before: datetime, token_hash: str) -> Any | None:
    user_model = get_user_model()
    if connection.vendor != "postgresql":  # SQLite's datetimes need the ORM's converters
        return next(iter(user_model.objects.raw(_token_user_sql(), [stale_before, token_hash])), None)
    # A plain cursor and Model.from_db: a raw queryset's column mapping cost more than the query.
    with prepared_cursor() as cursor:  # planned once per connection
        cursor.execute(_token_user_sql(), [stale_before, token_hash])
        row = cursor.fetchone()
    if row is None:
        return None
    *values, token_id, token_stale, role_rank = row
    user: Any = user_model.from_db(connection.alias, _user_fields(), values)
    user.token_id, user.token_stale, user.role_rank = token_id, token_stale, role_rank
    return user


def user_for_token(raw: str) -> Any | None:
    """The active user a token belongs to, or None for an unknown or revoked token.

    One query fetches the token, its user and the user's role: this runs on every API call.
    """
    now = timezone.now()
    stale_before = now - TOKEN_TOUCH_INTERVAL
    user: Any = _token_user(stale_before, hash_token(raw))  # with token_id, token_stale, role_rank
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


def user_for_password(username: str, password: str, *, request: HttpRequest) -> Any | None:
    """The active user for HTTP Basic credentials (the mlflow client's username/password).

    An API token is accepted as the password too, so a CI job can use Basic auth without a
    person's password. Wrong passwords count towards the failed-login lockout of `request`'s
    address (django-axes, accounts/lockouts.py), exactly as on the login page, and a locked-out
    username is refused even with the right password, remembered or not.
    """
    if password.startswith(TOKEN_PREFIX):
        user = user_for_token(password)
        return user if user is not None and user.get_username() == username else None
    key = _credential_cache_key(username, password)
    remembered = cache.get(key)
    if remembered is not None:
        # authenticate() would consult the lockout first; a remembered pair must not skip it, or
        # a locked-out account would still be usable by whoever knows (or guessed) its password.
        if not AxesProxyHandler.is_allowed(request, get_credentials(username=username)):
            request.axes_locked_out = True  # type: ignore[attr-defined]  # as axes' backend marks it
            return None
        user_pk, password_hash = remembered
        user = get_user_model().objects.filter(pk=user_pk, is_active=True).first()
        # A changed password changes the stored hash, which voids what was remembered.
        if user is not None and user.password == password_hash:
            return user
    user = authenticate(request, username=username, password=password)
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


# Users, as MLflow's basic-auth app manages them (its users/* calls) -------------------------


def _require_admin_or_self(actor: Any, user: Any, *, action: str) -> None:
    if actor is None or (getattr(actor, "pk", None) != user.pk and role_of(actor) < Role.ADMIN):
        raise PermissionDenied(f"{action} needs the admin role, unless it is your own account.")


def _validated_password(password: Any, user: Any = None) -> str:
    if not isinstance(password, str) or not password:
        raise InvalidInput("must not be empty", field="password")
    try:
        validate_password(password, user)
    except ValidationError as error:
        raise InvalidInput(" ".join(error.messages), field="password") from None
    return password


def create_user(*, actor: Any, username: Any, password: Any) -> Any:
    """A new account with the contributor role (MLflow's users can log runs), for admins to make."""
    require_role(actor, Role.ADMIN, action="Creating a user")
    if not isinstance(username, str) or not username.strip() or len(username) > 150:
        raise InvalidInput("must be a user name of 1 to 150 characters", field="username")
    user_model = get_user_model()
    if user_model.objects.filter(username=username).exists():
        raise AlreadyExists(f"a user named {username!r} already exists", field="username")
    password = _validated_password(password)
    with transaction.atomic():
        user = user_model.objects.create_user(username=username, password=password)
        record_event(actor=actor, action="user.created", object_type="auth.user", object_id=username)
        assign_role(user=user, role=Role.CONTRIBUTOR, actor=actor)
    return user


def set_user_password(*, actor: Any, user: Any, password: Any) -> None:
    """Change a password: the user's own, or anyone's for an admin. Audited without the password."""
    _require_admin_or_self(actor, user, action="Changing a password")
    password = _validated_password(password, user)
    with transaction.atomic():
        user.set_password(password)
        user.save(update_fields=["password"])
        record_event(
            actor=actor,
            action="user.password_changed",
            object_type="auth.user",
            object_id=user.get_username(),
        )


def set_user_admin(*, actor: Any, user: Any, is_admin: bool) -> None:
    """Give or take the admin role (MLflow's is_admin); superusers stay admins whatever this says."""
    require_role(actor, Role.ADMIN, action="Changing who is an admin")
    ensure_role_groups()
    group = Group.objects.get(name=Role.ADMIN.group_name)
    with transaction.atomic():
        if is_admin:
            user.groups.add(group)
        else:
            user.groups.remove(group)
        user.__dict__.pop("_labledger_role", None)
        record_event(
            actor=actor,
            action="user.role_assigned" if is_admin else "user.role_removed",
            object_type="auth.user",
            object_id=user.get_username(),
            after={"role": Role.ADMIN.group_name},
        )


def deactivate_user(*, actor: Any, user: Any) -> None:
    """MLflow's delete_user: the account stops working (tokens too) but stays, so the audit
    trail and the runs it logged keep naming who did what."""
    require_role(actor, Role.ADMIN, action="Deleting a user")
    if user.pk == getattr(actor, "pk", None):
        raise InvalidInput("you cannot delete your own account", field="username")
    with transaction.atomic():
        user.is_active = False
        user.save(update_fields=["is_active"])
        ApiToken.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=timezone.now())
        record_event(
            actor=actor, action="user.deactivated", object_type="auth.user", object_id=user.get_username()
        )
