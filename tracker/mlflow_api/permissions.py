"""MLflow endpoints: per-object permissions as its basic-auth app serves them
(`experiments/permissions/*`, `registered-models/permissions/*`).

Thin, and one implementation for every kind: `grant_endpoints` builds the four calls from the
kind's services (an accounts.permissions.GrantKind, which holds the rules: MANAGE to grant, the
levels, the audit), how a call names the object, and how a grant is shown.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from accounts.permissions import GrantKind, get_grantee, parse_level
from tracker.models import ExperimentPermission
from tracker.permissions import EXPERIMENT_GRANTS

from .experiments import _experiment
from .protocol import Call, Endpoint


def experiment_permission(grant: ExperimentPermission) -> dict[str, Any]:
    return {
        "experiment_id": str(grant.experiment_id),
        "user_id": grant.user_id,
        "permission": grant.level_name,
    }


def grantee(call: Call) -> Any:
    return get_grantee(username=call.string("username", required=True))


def grant_endpoints(
    *,
    path: str,
    envelope: str,
    grants: GrantKind,
    find: Callable[[Call], Any],
    shown: Callable[[Any], dict[str, Any]],
) -> list[Endpoint]:
    """`<path>/create|get|update|delete` for one kind: `find` reads the object from the call
    (READ checked), `shown` is a grant in the response, under `envelope`."""

    def create(call: Call) -> dict[str, Any]:
        obj, user = find(call), grantee(call)
        level = parse_level(call.string("permission", required=True))
        grant = grants.set(actor=call.user, obj=obj, grantee=user, level=level, only="create")
        return {envelope: shown(grant)}

    def get(call: Call) -> dict[str, Any]:
        obj, user = find(call), grantee(call)
        return {envelope: shown(grants.get(user=call.user, obj=obj, grantee=user))}

    def update(call: Call) -> dict[str, Any]:
        obj, user = find(call), grantee(call)
        level = parse_level(call.string("permission", required=True))
        grants.set(actor=call.user, obj=obj, grantee=user, level=level, only="update")
        return {}

    def delete(call: Call) -> dict[str, Any]:
        obj, user = find(call), grantee(call)
        grants.delete(actor=call.user, obj=obj, grantee=user)
        return {}

    return [
        Endpoint("POST", f"{path}/create", create),
        Endpoint("GET", f"{path}/get", get),
        Endpoint("PATCH", f"{path}/update", update),
        Endpoint("DELETE", f"{path}/delete", delete),
    ]


ENDPOINTS: list[Endpoint] = grant_endpoints(
    path="experiments/permissions",
    envelope="experiment_permission",
    grants=EXPERIMENT_GRANTS,
    find=_experiment,
    shown=experiment_permission,
)
