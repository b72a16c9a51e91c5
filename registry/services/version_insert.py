"""A new model version under the next number of its model, in as few round trips as it takes.

Version numbers are per model and gap-free: the UPDATE that marks the model changed also locks
its row while the next number is picked, and deleted versions keep their numbers (as in MLflow),
so a number never names two versions. On PostgreSQL the UPDATE and an INSERT … SELECT max + 1 are
two statements, so the INSERT's snapshot, taken after the lock is granted, sees the version of
whoever held it; they go to the server together, with the transaction's BEGIN, and, for a version
that is a whole transaction, with its audit event and the COMMIT: one round trip in all.
"""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.db.models import Max
from django.utils import timezone

from audit.services import event_insert_sql, event_params
from config.db import execute_committed
from registry.models import AUDIT_ID_PREFIX, ModelVersion, RegisteredModel

_FIELDS = [field for field in ModelVersion._meta.concrete_fields if not field.primary_key]
_VERSIONS, _MODELS = ModelVersion._meta.db_table, RegisteredModel._meta.db_table

LOCK_MODEL = f"UPDATE {_MODELS} SET updated_at = %(now)s WHERE id = %(model)s AND deleted_at IS NULL"
NEXT_VERSION = (
    f"INSERT INTO {_VERSIONS} ({', '.join(field.column for field in _FIELDS)}) "
    "SELECT "
    + ", ".join(
        "COALESCE(MAX(version), 0) + 1" if field.name == "version" else f"%(v_{field.column})s"
        for field in _FIELDS
    )
    + f" FROM {_VERSIONS} WHERE model_id = %(model)s RETURNING id, version"
)
# The event names the version by the id and number the INSERT gave it, as record_registry_event
# would after the fact ("id:<pk>", and the number in its data).
_EVENT = event_insert_sql(
    prefix="event_",
    computed={
        "object_id": f"'{AUDIT_ID_PREFIX}' || version.id",
        "after": "jsonb_set(%(event_after)s::jsonb, '{version}', to_jsonb(version.version))",
    },
)
NEXT_VERSION_WITH_EVENT = (
    f"WITH version AS ({NEXT_VERSION}), event AS ({_EVENT} FROM version) SELECT id, version FROM version"
)


def _params(version: ModelVersion) -> dict[str, Any]:
    params = {
        f"v_{field.column}": field.get_db_prep_save(field.pre_save(version, True), connection)
        for field in _FIELDS
        if field.name != "version"
    }
    return {**params, "now": timezone.now(), "model": version.model_id}


def _saved(version: ModelVersion, row: tuple[int, int]) -> None:
    version.pk, version.version = row
    version._state.adding = False
    version._state.db = connection.alias


def insert_version(version: ModelVersion) -> None:
    """Save a new version under the next number of its model, inside the caller's transaction."""
    if connection.vendor != "postgresql":
        RegisteredModel.objects.filter(pk=version.model_id).update(updated_at=timezone.now())
        top = ModelVersion.all_objects.filter(model_id=version.model_id).aggregate(top=Max("version"))["top"]
        version.version = (top or 0) + 1
        version.save(force_insert=True)
        return
    params = _params(version)
    _saved(version, execute_committed((LOCK_MODEL, params), (NEXT_VERSION, params)))


def insert_version_with_event(
    version: ModelVersion, *, actor: Any, action: str, after: dict[str, Any]
) -> None:
    """PostgreSQL: save a new version and its audit event (`after` with any number under
    "version": the statement puts the real one there) and commit them, in one round trip; or
    join the caller's transaction."""
    params = _params(version)
    params |= event_params(
        prefix="event_",
        actor=actor,
        action=action,
        object_type=ModelVersion._meta.label_lower,
        object_id="",  # computed by the statement
        after=after,
    )
    _saved(version, execute_committed((LOCK_MODEL, params), (NEXT_VERSION_WITH_EVENT, params)))
