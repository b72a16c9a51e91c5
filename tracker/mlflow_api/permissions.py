"""MLflow endpoints: experiment permissions (its basic-auth app's `experiments/permissions/*`).

Thin: the rules (MANAGE to grant, the levels, the audit) are in tracker.permissions.
"""

from __future__ import annotations

from typing import Any

from accounts.permissions import get_grantee, parse_level
from tracker import permissions
from tracker.models import ExperimentPermission

from .experiments import _experiment
from .protocol import Call, Endpoint


def experiment_permission(grant: ExperimentPermission) -> dict[str, Any]:
    return {
        "experiment_id": str(grant.experiment_id),
        "user_id": grant.user_id,
        "permission": grant.level_name,
    }


def _grantee(call: Call) -> Any:
    return get_grantee(username=call.string("username", required=True))


def create_experiment_permission(call: Call) -> dict[str, Any]:
    experiment, grantee = _experiment(call), _grantee(call)
    level = parse_level(call.string("permission", required=True))
    grant = permissions.set_experiment_permission(
        actor=call.user, experiment=experiment, grantee=grantee, level=level, only="create"
    )
    return {"experiment_permission": experiment_permission(grant)}


def get_experiment_permission(call: Call) -> dict[str, Any]:
    experiment, grantee = _experiment(call), _grantee(call)
    grant = permissions.get_experiment_permission(user=call.user, experiment=experiment, grantee=grantee)
    return {"experiment_permission": experiment_permission(grant)}


def update_experiment_permission(call: Call) -> dict[str, Any]:
    experiment, grantee = _experiment(call), _grantee(call)
    level = parse_level(call.string("permission", required=True))
    permissions.set_experiment_permission(
        actor=call.user, experiment=experiment, grantee=grantee, level=level, only="update"
    )
    return {}


def delete_experiment_permission(call: Call) -> dict[str, Any]:
    experiment, grantee = _experiment(call), _grantee(call)
    permissions.delete_experiment_permission(actor=call.user, experiment=experiment, grantee=grantee)
    return {}


ENDPOINTS: list[Endpoint] = [
    Endpoint("POST", "experiments/permissions/create", create_experiment_permission),
    Endpoint("GET", "experiments/permissions/get", get_experiment_permission),
    Endpoint("PATCH", "experiments/permissions/update", update_experiment_permission),
    Endpoint("DELETE", "experiments/permissions/delete", delete_experiment_permission),
]
