"""MLflow's JSON shapes of registered models and versions, and the request fields they share.

Versions are protobuf strings on the wire ("3"), timestamps milliseconds, and unset fields are
left out, as MLflow's own server does.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from config.epoch import to_ms
from config.exceptions import PermissionDenied
from registry.selectors import RegisteredModelRecord, VersionRecord
from registry.services import ProtectedLabelHeld
from tracker.mlflow_api.protocol import omit_empty


def model_version(record: VersionRecord) -> dict[str, Any]:
    # Registration is synchronous here, so every version is READY and the client never polls.
    return omit_empty(
        {
            "name": record.name,
            "version": str(record.version),
            "creation_timestamp": to_ms(record.created_at),
            "last_updated_timestamp": to_ms(record.updated_at),
            "user_id": record.creator,
            "current_stage": record.stage,
            "description": record.description,
            "source": record.source,
            "run_id": record.run_id,
            "status": "READY",
            "run_link": record.run_link,
            "tags": [{"key": key, "value": value} for key, value in record.tags],
            "aliases": list(record.aliases),
            "model_id": record.model_id,
        }
    )


def registered_model(record: RegisteredModelRecord) -> dict[str, Any]:
    return omit_empty(
        {
            "name": record.name,
            "creation_timestamp": to_ms(record.created_at),
            "last_updated_timestamp": to_ms(record.updated_at),
            "description": record.description,
            "latest_versions": [model_version(version) for version in record.latest_versions],
            "tags": [{"key": key, "value": value} for key, value in record.tags],
            "aliases": [{"alias": alias, "version": str(number)} for alias, number in record.aliases],
        }
    )


@contextmanager
def protected_label_denied() -> Iterator[None]:
    """A deletion or rename refused for a protected label reaches MLflow clients as
    PERMISSION_DENIED, like every other way of moving that label without a review (the native
    API answers 409)."""
    try:
        yield
    except ProtectedLabelHeld as error:
        raise PermissionDenied(error.message, field=error.field) from error
