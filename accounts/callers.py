"""A caller known so far only by a bearer token, for the hot writes that check it themselves.

Every API request looks its token up before anything else: a round trip to the database for a
request whose real work, on the hot write paths, is one statement. Those writes (a lone metric
point, a model version by name) take a `TokenCaller` instead of a user, and their statement finds
the token's user with the `caller` CTE below, under the same conditions as the lookup (the token
known and not revoked, the user active, a role high enough), touches the token's last_used_at as
the lookup does, and writes nothing where any of that fails. So a revoked token is refused on the
next request, as docs/operations.md promises: by the statement itself.

Anything else a request with such a caller does goes through `user_of`, which looks the user up
the API's own way (with its own refusals) the first time it is needed.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache, cached_property
from typing import Any

from django.contrib.auth import get_user_model
from django.db import models
from django.utils import timezone

from .models import ApiToken
from .permissions import Level, level_guard_params, object_guard_params, role_needed
from .roles import Role, group_rank_sql
from .services import TOKEN_TOUCH_INTERVAL, hash_token


class TokenCaller:
    """Who sent a request with `Authorization: Bearer <raw>`, not yet looked up. `look_up` is the
    API's own authentication of the request: it returns the user or raises that API's refusal."""

    def __init__(self, raw_token: str, look_up: Callable[[], Any]) -> None:
        self.token_hash = hash_token(raw_token)
        self._look_up = look_up

    @cached_property
    def user(self) -> Any:
        return self._look_up()

    @property
    def looked_up(self) -> bool:
        return "user" in self.__dict__

    def __repr__(self) -> str:
        return f"TokenCaller({'looked up' if self.looked_up else 'not looked up'})"


def user_of(actor: Any) -> Any:
    """The user behind `actor`: a user as it is, a `TokenCaller` looked up (or refused)."""
    return actor.user if isinstance(actor, TokenCaller) else actor


def in_statement(actor: Any) -> TokenCaller | None:
    """The caller a write should check in its own statement: a `TokenCaller` nobody has looked up
    yet (once looked up, the user is at hand and the statement takes it as a parameter)."""
    return actor if isinstance(actor, TokenCaller) and not actor.looked_up else None


@cache
def caller_sql() -> str:
    """Two CTEs for a data-modifying statement (`WITH {caller_sql()}, …`): `caller`, one row (id,
    username, admin) for the active user behind the token hash %(caller_token)s, where they hold
    at least the role %(caller_role)s, else no row; and `caller_touched`, which sets the token's
    last_used_at where it is stale, as `user_for_token` does. The touch skips a token row another
    transaction holds (the same token's concurrent request touches it anyway; a revocation decides
    for itself), so it never waits and never takes part in a deadlock."""
    users = get_user_model()._meta.db_table
    tokens = ApiToken._meta.db_table
    return (
        "caller AS ("
        f"SELECT u.id, u.username, t.id AS token_id, "
        f"u.is_superuser OR rank.value >= {int(Role.ADMIN)} AS admin "
        f"FROM {tokens} t JOIN {users} u ON u.id = t.user_id, "
        f"LATERAL (SELECT {group_rank_sql('u.id')} AS value) rank "
        "WHERE t.token_hash = %(caller_token)s AND t.revoked_at IS NULL AND u.is_active "
        "AND (u.is_superuser OR rank.value >= %(caller_role)s)"
        "), caller_touched AS ("
        f"UPDATE {tokens} SET last_used_at = %(caller_now)s WHERE id = ("
        f"SELECT stale.id FROM {tokens} stale WHERE stale.id = (SELECT token_id FROM caller) "
        "AND (stale.last_used_at IS NULL OR stale.last_used_at < %(caller_stale)s) "
        "FOR UPDATE SKIP LOCKED))"
    )


def _caller_params(caller: TokenCaller, role: Role) -> dict[str, Any]:
    """The parameters of `caller_sql` for `caller` needing at least `role`."""
    now = timezone.now()
    return {
        "caller_token": caller.token_hash,
        "caller_role": int(role),
        "caller_now": now,
        "caller_stale": now - TOKEN_TOUCH_INTERVAL,
    }


def guard_params(actor: Any, *guards: tuple[type[models.Model], Level, str]) -> dict[str, Any] | None:
    """The parameters of a statement's `level_guard_sql` conditions, one per (model, level,
    prefix): for a user, theirs (None where their role alone refuses, so no statement can
    succeed); for a `TokenCaller` not looked up, those that do not depend on the user, with
    `caller_sql`'s for the highest role the levels need (the statement then reads the user from
    its `caller` row: `level_guard_sql(…, caller=True)`)."""
    caller = in_statement(actor)
    if caller is not None:
        params = _caller_params(caller, max(role_needed(level) for _, level, _ in guards))
        for model, level, prefix in guards:
            params |= object_guard_params(model, level, prefix=prefix)
        return params
    params = {}
    for model, level, prefix in guards:
        guard = level_guard_params(actor, model, level, prefix=prefix)
        if guard is None:
            return None
        params |= guard
    return params


# The event of a write checked in its statement names its actor from the `caller` row.
CALLER_EVENT_FIELDS = {"actor": "(SELECT id FROM caller)", "actor_name": "(SELECT username FROM caller)"}
