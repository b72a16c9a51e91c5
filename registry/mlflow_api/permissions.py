"""MLflow's basic-auth calls that span both apps: registered-model permissions
(`registered-models/permissions/*`), users (`users/*`), and MLflow 3's per-user grants
(`/api/3.0/mlflow/users/permissions/grant|revoke|get`, what the 3.x AuthServiceClient sends,
naming a `resource_type` of `experiment` or `registered_model`).

Thin: rules live in accounts (users, levels), tracker.permissions and registry.permissions.
"""

from __future__ import annotations

from typing import Any

from accounts import services as accounts_services
from accounts.permissions import GrantKind, Level, level_of, parse_level
from accounts.roles import Role, role_of
from config.exceptions import InvalidInput, PermissionDenied
from registry.models import RegisteredModel, RegisteredModelPermission
from registry.permissions import MODEL_GRANTS
from tracker import selectors as tracker_selectors
from tracker.mlflow_api.permissions import experiment_permission, grant_endpoints, grantee
from tracker.mlflow_api.protocol import Call, Endpoint
from tracker.models import Experiment, ExperimentPermission
from tracker.permissions import EXPERIMENT_GRANTS

from .registered_models import _model, registered_model


def model_permission(grant: RegisteredModelPermission) -> dict[str, Any]:
    return {"name": grant.model.name, "user_id": grant.user_id, "permission": grant.level_name}


# Users --------------------------------------------------------------------------------------


def _user_json(user: Any, *, with_permissions: bool) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "id": user.pk,
        "username": user.get_username(),
        "is_admin": role_of(user) >= Role.ADMIN,
    }
    if with_permissions:
        experiments = ExperimentPermission.objects.filter(user=user).order_by("experiment_id")
        models = (
            RegisteredModelPermission.objects.filter(user=user)
            .select_related("model")
            .order_by("model__name")
        )
        shown["experiment_permissions"] = [experiment_permission(grant) for grant in experiments]
        shown["registered_model_permissions"] = [model_permission(grant) for grant in models]
    return shown


def create_user(call: Call) -> dict[str, Any]:
    user = accounts_services.create_user(
        actor=call.user, username=call.string("username", required=True), password=call.string("password")
    )
    return {"user": _user_json(user, with_permissions=False)}


def get_user(call: Call) -> dict[str, Any]:
    user = grantee(call)
    if user.pk != call.user.pk and role_of(call.user) < Role.ADMIN:
        raise PermissionDenied("Reading another user needs the admin role.")
    return {"user": _user_json(user, with_permissions=True)}


def update_user_password(call: Call) -> dict[str, Any]:
    accounts_services.set_user_password(actor=call.user, user=grantee(call), password=call.string("password"))
    return {}


def update_user_admin(call: Call) -> dict[str, Any]:
    accounts_services.set_user_admin(actor=call.user, user=grantee(call), is_admin=call.boolean("is_admin"))
    return {}


def delete_user(call: Call) -> dict[str, Any]:
    accounts_services.deactivate_user(actor=call.user, user=grantee(call))
    return {}


# MLflow 3: one grant call for every kind of resource -----------------------------------------


def _resource(call: Call) -> tuple[GrantKind, Experiment | RegisteredModel]:
    kind = call.string("resource_type", required=True)
    resource_id = call.string("resource_id", required=True)
    if kind == "experiment":
        return EXPERIMENT_GRANTS, tracker_selectors.get_experiment(user=call.user, experiment_id=resource_id)
    if kind == "registered_model":
        return MODEL_GRANTS, registered_model(call.user, resource_id)
    raise InvalidInput(
        f"resource_type {kind!r} is not supported here: use 'experiment' or 'registered_model'",
        field="resource_type",
    )


def grant_user_permission(call: Call) -> dict[str, Any]:
    (grants, resource), user = _resource(call), grantee(call)
    level = parse_level(call.string("permission", required=True))
    grants.set(actor=call.user, obj=resource, grantee=user, level=level)
    return {}


def revoke_user_permission(call: Call) -> dict[str, Any]:
    (grants, resource), user = _resource(call), grantee(call)
    grants.delete(actor=call.user, obj=resource, grantee=user)
    return {}


def get_user_permission(call: Call) -> dict[str, Any]:
    """The user's effective level, roles and default included; `allowed` is MLflow's "can use"."""
    (_, resource), user = _resource(call), grantee(call)
    if user.pk != call.user.pk and level_of(call.user, resource) < Level.MANAGE:
        raise PermissionDenied("Reading another user's permission needs MANAGE on the resource, or admin.")
    level = level_of(user, resource)
    return {"allowed": level >= Level.EDIT, "permission": level.name}


ENDPOINTS: list[Endpoint] = [
    *grant_endpoints(
        path="registered-models/permissions",
        envelope="registered_model_permission",
        grants=MODEL_GRANTS,
        find=_model,
        shown=model_permission,
    ),
    Endpoint("POST", "users/create", create_user),
    Endpoint("GET", "users/get", get_user),
    Endpoint("PATCH", "users/update-password", update_user_password),
    Endpoint("PATCH", "users/update-admin", update_user_admin),
    Endpoint("DELETE", "users/delete", delete_user),
]
V3_ENDPOINTS: list[Endpoint] = [
    Endpoint("POST", "users/permissions/grant", grant_user_permission),
    Endpoint("POST", "users/permissions/revoke", revoke_user_permission),
    Endpoint("GET", "users/permissions/get", get_user_permission),
]
