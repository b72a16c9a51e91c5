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

from accounts.permissions import Level, level_guard_params, level_guard_sql
from audit.services import event_insert_sql, event_params
from config.db import execute_committed
from registry.models import AUDIT_ID_PREFIX, ModelVersion, RegisteredModel
from tracker.models import Experiment, Lifecycle, Run

_FIELDS = [field for field in ModelVersion._meta.concrete_fields if not field.primary_key]
_VERSIONS, _MODELS, _RUNS = ModelVersion._meta.db_table, RegisteredModel._meta.db_table, Run._meta.db_table

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


def _event_params(*, actor: Any, action: str, after: dict[str, Any]) -> dict[str, Any]:
    """The audit event's parameters; its object id is the version's, which the statement knows."""
    return event_params(
        prefix="event_",
        actor=actor,
        action=action,
        object_type=ModelVersion._meta.label_lower,
        object_id="",
        after=after,
    )


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
    params = _params(version) | _event_params(actor=actor, action=action, after=after)
    _saved(version, execute_committed((LOCK_MODEL, params), (NEXT_VERSION_WITH_EVENT, params)))


# A version registered by the model's name and the run's id, as both APIs send them, found and
# checked in the statements that write it. The model is found only where
# `require_model_permission(actor, model, EDIT)` would pass, the run only where it is active and
# `require_run_permission(actor, run, READ)` would: each condition is written once and used by
# both statements, so the INSERT finds exactly the model the UPDATE locked (and, to be sure, only
# with the `updated_at` the UPDATE gave it). Where either is missing or forbidden, neither
# statement touches a row and the caller takes the checked path, whose error says why.
_FOUND_MODEL = "m.name = %(model_name)s AND m.deleted_at IS NULL AND " + level_guard_sql(
    RegisteredModel, target="m.id", prefix="model_guard_"
)
_FOUND_RUN = "r.uuid = %(run_uuid)s AND r.lifecycle = %(active)s AND " + level_guard_sql(
    Experiment, target="r.experiment_id", prefix="run_guard_"
)
LOCK_NAMED_MODEL = (
    f"UPDATE {_MODELS} m SET updated_at = %(now)s WHERE {_FOUND_MODEL} "
    f"AND EXISTS (SELECT 1 FROM {_RUNS} r WHERE {_FOUND_RUN})"
)
_NAMED_VALUES = {
    "model": "m.id",
    "version": f"(SELECT COALESCE(MAX(v.version), 0) + 1 FROM {_VERSIONS} v WHERE v.model_id = m.id)",
    "run": "r.id",
    # A source left out is the run's model folder, as create_model_version makes it.
    "source": "COALESCE(NULLIF(%(v_source)s, ''), r.artifact_uri || '/model')",
}
_NAMED_INSERT = (
    f"INSERT INTO {_VERSIONS} ({', '.join(field.column for field in _FIELDS)}) SELECT "
    + ", ".join(_NAMED_VALUES.get(field.name, f"%(v_{field.column})s") for field in _FIELDS)
    + f" FROM {_MODELS} m, {_RUNS} r WHERE {_FOUND_MODEL} AND m.updated_at = %(now)s AND {_FOUND_RUN}"
    " RETURNING id, version, model_id, run_id, source"
)
_NAMED_EVENT = event_insert_sql(
    prefix="event_",
    computed={
        "object_id": f"'{AUDIT_ID_PREFIX}' || version.id",
        "after": "jsonb_set(jsonb_set(%(event_after)s::jsonb, '{version}', to_jsonb(version.version)), "
        "'{source}', to_jsonb(version.source))",
    },
)
NAMED_VERSION_WITH_EVENT = (
    f"WITH version AS ({_NAMED_INSERT}), event AS ({_NAMED_EVENT} FROM version) "
    f"SELECT version.id, version.version, version.model_id, version.run_id, version.source, r.experiment_id "
    f"FROM version JOIN {_RUNS} r ON r.id = version.run_id"
)


def insert_named_version_with_event(
    version: ModelVersion, *, model_name: str, run_uuid: str, actor: Any, action: str, after: dict[str, Any]
) -> bool:
    """PostgreSQL: register `version` (validated fields; no model or run yet, its source empty
    for the run's default) under the model named `model_name` from run `run_uuid`, with its audit
    event, and commit, in one round trip; or join the caller's transaction. Fill in the version's
    number, model and run and return True; return False, with nothing written, where the model or
    run is missing, deleted or not the actor's (EDIT on the model, READ on the run)."""
    model_guard = level_guard_params(actor, RegisteredModel, Level.EDIT, prefix="model_guard_")
    run_guard = level_guard_params(actor, Experiment, Level.READ, prefix="run_guard_")
    if model_guard is None or run_guard is None:
        return False
    params = _params(version) | model_guard | run_guard
    params |= {"model_name": model_name, "run_uuid": run_uuid, "active": Lifecycle.ACTIVE}
    params |= _event_params(actor=actor, action=action, after=after)
    row = execute_committed((LOCK_NAMED_MODEL, params), (NAMED_VERSION_WITH_EVENT, params))
    if row is None:
        return False
    version.pk, version.version, model_id, run_id, version.source, experiment_id = row
    # The model and run as far as this request knows them; any other field loads when read.
    version.model = RegisteredModel.from_db(connection.alias, ["id", "name"], [model_id, model_name])
    version.run = Run.from_db(
        connection.alias, ["id", "uuid", "experiment_id"], [run_id, run_uuid, experiment_id]
    )
    version._state.adding = False
    version._state.db = connection.alias
    return True
