"""MLflow's JSON shapes of registered models and versions, and the request fields they share.

Versions are protobuf strings on the wire ("3"), timestamps milliseconds, and unset fields are
left out, as MLflow's own server does.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from config.exceptions import InvalidInput
from registry.selectors import RegisteredModelRecord, VersionRecord
from tracker.mlflow_api.protocol import Call, omit_empty
from tracker.services import TagInput

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)


def _ms(moment: datetime) -> int:
    return (moment - _EPOCH) // _ONE_MS


def model_version(record: VersionRecord) -> dict[str, Any]:
    # Registration is synchronous here, so every version is READY and the client never polls.
    return omit_empty(
        {
            "name": record.name,
            "version": str(record.version),
            "creation_timestamp": _ms(record.created_at),
            "last_updated_timestamp": _ms(record.updated_at),
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
            "creation_timestamp": _ms(record.created_at),
            "last_updated_timestamp": _ms(record.updated_at),
            "description": record.description,
            "latest_versions": [model_version(version) for version in record.latest_versions],
            "tags": [{"key": key, "value": value} for key, value in record.tags],
            "aliases": [{"alias": alias, "version": str(number)} for alias, number in record.aliases],
        }
    )


def text(call: Call, name: str, *, required: bool = False) -> str:
    """A string field that may reach a query: PostgreSQL cannot compare text holding NUL."""
    value = call.string(name, required=required)
    if "\x00" in value:
        raise InvalidInput(f"'{name}' must not contain NUL characters", field=name)
    return value


def tags_in(call: Call) -> list[TagInput]:
    """The `tags` field ([{key, value}]); the registry services check each key and value."""
    return [
        TagInput(key=tag.get("key"), value="" if tag.get("value") is None else tag["value"])
        for tag in call.objects("tags")
    ]
