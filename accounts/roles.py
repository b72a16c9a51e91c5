"""Roles are Django groups, ranked; services call `require_role` before they change anything."""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from config.exceptions import PermissionDenied, Unauthenticated


class Role(IntEnum):
    NONE = 0
    VIEWER = 1
    CONTRIBUTOR = 2
    REVIEWER = 3
    ADMIN = 4

    @property
    def group_name(self) -> str:
        return self.name.lower()


ROLE_GROUPS = {role.group_name: role for role in Role if role is not Role.NONE}


def remember_role(user: Any, role: Role) -> None:
    """Cache a role fetched with the user (e.g. by token authentication) for this request."""
    user._labledger_role = role


def role_of(user: Any) -> Role:
    """The highest role among the user's groups; superusers are admins."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return Role.NONE
    if user.is_superuser:
        return Role.ADMIN
    cached = getattr(user, "_labledger_role", None)
    if cached is None:
        names = user.groups.values_list("name", flat=True)
        cached = max((ROLE_GROUPS[n] for n in names if n in ROLE_GROUPS), default=Role.NONE)
        user._labledger_role = cached
    return cached


def require_role(user: Any, role: Role, *, action: str) -> None:
    """Raise unless `user` holds `role` or a higher one; `action` ends up in the message."""
    if user is None or not getattr(user, "is_authenticated", False):
        raise Unauthenticated("Authentication required.")
    if role_of(user) < role:
        raise PermissionDenied(f"{action} needs the {role.group_name} role.")


def group_rank_sql(user_id: str) -> str:
    """SQL for the highest rank among the groups of the user whose id is the SQL expression
    `user_id` (0 for none), as `role_of` ranks them; superusers are left to the caller. For the
    statements that look a caller up by their token: this runs on every API call."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    user_model = get_user_model()
    groups = user_model.groups.field
    memberships = user_model.groups.through._meta.db_table
    ranks = " ".join(f"WHEN '{name}' THEN {int(role)}" for name, role in ROLE_GROUPS.items())
    return (
        f"COALESCE((SELECT MAX(CASE g.name {ranks} ELSE 0 END) FROM {memberships} ug "
        f"JOIN {Group._meta.db_table} g ON g.id = ug.{groups.m2m_reverse_name()} "
        f"WHERE ug.{groups.m2m_column_name()} = {user_id}), 0)"
    )
