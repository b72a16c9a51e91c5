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
