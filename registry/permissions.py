"""Who may read, change and manage a registered model and its versions (MLflow's model).

EDIT changes descriptions, tags, aliases and stages and registers versions; MANAGE also deletes
and grants. These sit beside the promotion policy and never above it: a protected label moves
only through an approved request, whatever the level, and who may review is the policy's
decision (registry.selectors.promotions), not a grant's.
"""

from __future__ import annotations

from typing import Any

from django.db.models import CharField, Q, QuerySet, Value
from django.db.models.functions import Cast, Concat

from accounts.permissions import (
    GrantKind,
    Level,
    closes_any,
    delete_grant,
    get_grant,
    level_of,
    list_grants,
    readable_q,
    require_level,
    set_grant,
)
from audit.visibility import show_admins_only, show_readable
from registry.models import AUDIT_ID_PREFIX, ModelVersion, RegisteredModel, RegisteredModelPermission, Webhook

__all__ = [
    "MODEL_GRANTS",
    "Level",
    "delete_model_permission",
    "get_model_permission",
    "list_model_permissions",
    "model_level",
    "readable_models_q",
    "require_model_permission",
    "require_version_permission",
    "set_model_permission",
]


def model_level(user: Any, model: RegisteredModel) -> Level:
    return level_of(user, model)


def require_model_permission(
    user: Any, model: RegisteredModel, level: Level, *, action: str, via: str = ""
) -> None:
    """Raise PERMISSION_DENIED unless the user holds `level` on the model (roles included).

    The refusal names the model as the caller addressed it: by the name they gave, or, when they
    reached it through something else (`via`: "request #7"), as that thing's model, so a user who
    may not read the model does not learn its name."""
    named = f"the registered model of {via}" if via else model_named(model)
    require_level(user, model, level, action=action, named=named)


def model_named(model: RegisteredModel) -> str:
    """How a refusal names a model the caller named: registered models are addressed by name."""
    return f"registered model {model.name}"


def require_version_permission(user: Any, version: ModelVersion, level: Level, *, action: str) -> None:
    """A version carries its registered model's permission, as in MLflow. Versions are addressed
    by their model's name and their number, so the refusal names the model."""
    require_level(user, version.model, level, action=action, named=model_named(version.model))


def readable_models_q(user: Any, *, path: str = "pk") -> Q:
    """Filter for querysets reaching a registered model through `path` (`model_id` on versions)."""
    return readable_q(user, RegisteredModelPermission, path=path)


def list_model_permissions(*, user: Any, model: RegisteredModel) -> QuerySet[RegisteredModelPermission]:
    require_model_permission(user, model, Level.READ, action="Listing a registered model's permissions")
    return list_grants(obj=model)


def get_model_permission(*, user: Any, model: RegisteredModel, grantee: Any) -> RegisteredModelPermission:
    require_model_permission(user, model, Level.READ, action="Reading a registered model permission")
    return get_grant(obj=model, user=grantee)  # type: ignore[no-any-return]


def set_model_permission(
    *, actor: Any, only: str = "", model: RegisteredModel, grantee: Any, level: Level
) -> RegisteredModelPermission:
    """Create or change a grant; needs MANAGE on the model."""
    return set_grant(  # type: ignore[no-any-return]
        actor=actor,
        obj=model,
        user=grantee,
        level=level,
        only=only,
        action="Granting a registered model permission",
        named=model_named(model),
    )


def delete_model_permission(*, actor: Any, model: RegisteredModel, grantee: Any) -> None:
    delete_grant(
        actor=actor,
        obj=model,
        user=grantee,
        action="Removing a registered model permission",
        named=model_named(model),
    )


MODEL_GRANTS = GrantKind(
    "model", list_model_permissions, get_model_permission, set_model_permission, delete_model_permission
)


# Audit events ----------------------------------------------------------------------------------
# An event about a registered model or one of its versions (a promotion's included) is read with
# the model; a webhook's events are the admins' alone (audit.visibility; registered in RegistryConfig.ready).
# When some model is closed to a user, only the events of objects they may read now are shown:
# a deleted object, or one older events named by name, is hidden too (fails closed).


def closes_any_model(user: Any) -> bool:
    return closes_any(user, RegisteredModelPermission)


def _event_ids(rows: QuerySet[Any]) -> QuerySet[Any]:
    return rows.annotate(
        event_object_id=Concat(Value(AUDIT_ID_PREFIX), Cast("pk", CharField()), output_field=CharField())
    ).values("event_object_id")


def _readable_models(user: Any) -> QuerySet[RegisteredModel]:
    return RegisteredModel.all_objects.filter(readable_models_q(user))


def _readable_model_ids(user: Any) -> QuerySet[Any]:
    return _event_ids(_readable_models(user))


def _readable_version_ids(user: Any) -> QuerySet[Any]:
    return _event_ids(ModelVersion.all_objects.filter(model__in=_readable_models(user)))


def register_audit_visibility() -> None:
    """Tell the audit trail how to find the registry's objects a user may read."""
    show_readable(
        closes_any_model,
        {
            "registry.registeredmodel": _readable_model_ids,
            "registry.modelversion": _readable_version_ids,
        },
    )
    # Webhooks are the admins' to manage, and so are their events: a webhook's URL names the
    # host it calls (often an internal one), whether or not it is scoped to a model.
    show_admins_only(object_types=[Webhook._meta.label_lower])
