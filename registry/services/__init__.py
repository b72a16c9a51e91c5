"""Every write to the registry: the catalog (models, versions, tags, soft delete and restore),
labels (`move_label`, the one function that moves an alias or stage) and promotions (requests,
reviews, break-glass, policies), whatever path the call came in by."""

from registry.models import Label

from .catalog import (
    MAX_MODEL_NAME_LENGTH,
    MAX_REGISTRY_TAG_VALUE_LENGTH,
    ProtectedLabelHeld,
    create_model_version,
    create_model_version_from,
    create_registered_model,
    delete_model_version,
    delete_model_version_tag,
    delete_registered_model,
    delete_registered_model_tag,
    rename_registered_model,
    restore_model_version,
    restore_registered_model,
    set_model_version_tag,
    set_registered_model_tag,
    update_model_version,
    update_registered_model,
)
from .labels import (
    delete_alias,
    move_label,
    protected_label_message,
    set_alias,
    transition_stage,
    validate_alias,
)
from .promotions import (
    force_move,
    normalized_label,
    request_promotion,
    review_promotion,
    set_promotion_policy,
    withdraw_promotion,
)
from .webhook_delivery import PingResult, ping_webhook
from .webhooks import (
    WEBHOOK_EVENTS,
    create_webhook,
    delete_webhook,
    redeliver,
    rotate_webhook_secret,
    update_webhook,
)

__all__ = [
    "MAX_MODEL_NAME_LENGTH", "MAX_REGISTRY_TAG_VALUE_LENGTH", "WEBHOOK_EVENTS", "Label", "PingResult",
    "ProtectedLabelHeld", "create_model_version", "create_model_version_from",
    "create_registered_model", "create_webhook", "delete_alias", "delete_model_version",
    "delete_model_version_tag", "delete_registered_model", "delete_registered_model_tag",
    "delete_webhook", "force_move", "move_label", "normalized_label", "ping_webhook",
    "protected_label_message", "redeliver", "rename_registered_model", "request_promotion",
    "restore_model_version", "restore_registered_model", "review_promotion", "rotate_webhook_secret",
    "set_alias", "set_model_version_tag", "set_promotion_policy", "set_registered_model_tag",
    "transition_stage", "update_model_version", "update_registered_model", "update_webhook",
    "validate_alias", "withdraw_promotion",
]  # fmt: skip
