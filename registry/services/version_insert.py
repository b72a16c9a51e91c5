"""A new model version under the next number of its model, in one statement where it can.

Version numbers are per model and gap-free, and deleted versions keep theirs (as in MLflow), so a
number never names two versions. The model's row holds the highest number taken
(`RegisteredModel.last_version`): the UPDATE that marks the model changed raises it, and in
READ COMMITTED an UPDATE that waited for the row's lock applies itself to the row its previous
holder committed, so concurrent versions take consecutive numbers. On PostgreSQL that UPDATE is a
CTE of the INSERT (and of the audit event's INSERT, for a version that is a whole transaction):
one statement, one round trip. The number is also never below the highest version the statement
sees, for versions written without the counter (fixtures, older rows).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import F, Max, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from accounts.callers import CALLER_EVENT_FIELDS, caller_sql, guard_params, in_statement
from accounts.permissions import Level, level_guard_sql
from audit.services import event_insert_sql, event_params
from config.db import execute_committed
from config.exceptions import NotFound
from registry.models import AUDIT_ID_PREFIX, ModelVersion, RegisteredModel
from tracker.models import Experiment, Lifecycle, Run

_FIELDS = [field for field in ModelVersion._meta.concrete_fields if not field.primary_key]
_VERSIONS, _MODELS, _RUNS = ModelVersion._meta.db_table, RegisteredModel._meta.db_table, Run._meta.db_table
_COLUMNS = ", ".join(field.column for field in _FIELDS)

# The UPDATE that locks a model's row and raises its counter, for a model `m` the WHERE finds.
_NEXT_NUMBER = (
    f"GREATEST(m.last_version + 1, (SELECT COALESCE(MAX(v.version), 0) + 1 FROM {_VERSIONS} v "
    "WHERE v.model_id = m.id))"
)


def _numbering(where: str, *, caller: bool = False) -> str:
    return (
        f"UPDATE {_MODELS} m SET updated_at = %(now)s, last_version = {_NEXT_NUMBER} "
        f"{'FROM caller ' if caller else ''}WHERE {where} RETURNING m.id, m.last_version"
    )


def _version_values(computed: dict[str, str]) -> str:
    return ", ".join(computed.get(field.name, f"%(v_{field.column})s") for field in _FIELDS)


_NUMBERED_BY_ID = _numbering("m.id = %(model)s AND m.deleted_at IS NULL")
_INSERT_NUMBERED = (
    f"INSERT INTO {_VERSIONS} ({_COLUMNS}) "
    f"SELECT {_version_values({'model': 'numbered.id', 'version': 'numbered.last_version'})} "
    "FROM numbered RETURNING id, version"
)
NEXT_VERSION = f"WITH numbered AS ({_NUMBERED_BY_ID}) {_INSERT_NUMBERED}"
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
    f"WITH numbered AS ({_NUMBERED_BY_ID}), version AS ({_INSERT_NUMBERED}), "
    f"event AS ({_EVENT} FROM version) SELECT id, version FROM version"
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


def _model_gone(version: ModelVersion) -> NotFound:
    """The error for a model deleted since the caller found it: no version was written."""
    return NotFound(f"registered model {version.model.name!r} does not exist", field="name")


def _saved(version: ModelVersion, row: tuple[int, int] | None) -> None:
    if row is None:
        raise _model_gone(version)
    version.pk, version.version = row
    version._state.adding = False
    version._state.db = connection.alias


def insert_version(version: ModelVersion) -> None:
    """Save a new version under the next number of its model, inside the caller's transaction."""
    if connection.vendor == "postgresql":
        _saved(version, execute_committed(NEXT_VERSION, _params(version)))
        return
    # SQLite: one writer at a time, so the UPDATE and the read after it need no more care.
    highest = (
        ModelVersion.all_objects.filter(model_id=OuterRef("pk"))
        .values("model_id")
        .annotate(highest=Max("version"))
        .values("highest")
    )
    numbered = RegisteredModel.objects.filter(pk=version.model_id).update(
        updated_at=timezone.now(),
        last_version=Greatest(F("last_version") + 1, Coalesce(Subquery(highest), Value(0)) + 1),
    )
    if not numbered:
        raise _model_gone(version)
    version.version = RegisteredModel.all_objects.values_list("last_version", flat=True).get(
        pk=version.model_id
    )
    version.save(force_insert=True)


def insert_version_with_event(
    version: ModelVersion, *, actor: Any, action: str, after: dict[str, Any]
) -> None:
    """PostgreSQL: save a new version and its audit event (`after` with any number under
    "version": the statement puts the real one there), in one statement: a transaction of its
    own, or a part of the caller's."""
    params = _params(version) | _event_params(actor=actor, action=action, after=after)
    _saved(version, execute_committed(NEXT_VERSION_WITH_EVENT, params))


def _named_version_sql(*, caller: bool) -> str:
    """The statement; `caller`: the actor is the bearer token's user, found by the statement
    itself (accounts.callers), who becomes the version's creator and the event's actor."""
    found_model = "m.name = %(model_name)s AND m.deleted_at IS NULL AND " + level_guard_sql(
        RegisteredModel, target="m.id", prefix="model_guard_", caller=caller
    )
    found_run = "r.uuid = %(run_uuid)s AND r.lifecycle = %(active)s AND " + level_guard_sql(
        Experiment, target="r.experiment_id", prefix="run_guard_", caller=caller
    )
    callers = ", caller" if caller else ""
    numbered = _numbering(
        f"{found_model} AND EXISTS (SELECT 1 FROM {_RUNS} r{callers} WHERE {found_run})", caller=caller
    )
    values = {
        "model": "numbered.id",
        "version": "numbered.last_version",
        "run": "r.id",
        # A source left out is the run's model folder, as create_model_version makes it.
        "source": "COALESCE(NULLIF(%(v_source)s, ''), r.artifact_uri || '/model')",
        **({"created_by": "caller.id"} if caller else {}),
    }
    insert = (
        f"INSERT INTO {_VERSIONS} ({_COLUMNS}) SELECT {_version_values(values)} "
        f"FROM numbered, {_RUNS} r{callers} WHERE {found_run} "
        "RETURNING id, version, model_id, run_id, source"
    )
    event = event_insert_sql(
        prefix="event_",
        computed={
            "object_id": f"'{AUDIT_ID_PREFIX}' || version.id",
            "after": "jsonb_set(jsonb_set(%(event_after)s::jsonb, '{version}', to_jsonb(version.version)), "
            "'{source}', to_jsonb(version.source))",
            **(CALLER_EVENT_FIELDS if caller else {}),
        },
    )
    return (
        f"WITH {caller_sql() + ', ' if caller else ''}numbered AS ({numbered}), version AS ({insert}), "
        f"event AS ({event} FROM version) "
        "SELECT version.id, version.version, version.model_id, version.run_id, version.source, "
        f"r.experiment_id, {'caller.id, caller.username' if caller else 'NULL, NULL'} "
        f"FROM version JOIN {_RUNS} r ON r.id = version.run_id{callers}"
    )


# A version registered by the model's name and the run's id, as both APIs send them, found and
# checked by the statement that writes it. The model is found only where
# `require_model_permission(actor, model, EDIT)` would pass, the run only where it is active and
# `require_run_permission(actor, run, READ)` would. The UPDATE that numbers the version finds the
# model only with such a run, and the INSERT finds the run under the same snapshot, so the two
# agree. Where either is missing or forbidden, the statement touches no row and the caller takes
# the checked path, whose error says why.
NAMED_VERSION_WITH_EVENT = _named_version_sql(caller=False)
CALLER_NAMED_VERSION_WITH_EVENT = _named_version_sql(caller=True)


def insert_named_version_with_event(
    version: ModelVersion, *, model_name: str, run_uuid: str, actor: Any, action: str, after: dict[str, Any]
) -> bool:
    """PostgreSQL: register `version` (validated fields; no model or run yet, its source empty
    for the run's default) under the model named `model_name` from run `run_uuid`, with its audit
    event, in one statement (a transaction of its own, or a part of the caller's). Fill in its
    number, model and run and return True; return False, with nothing written, where the model or
    run is missing, deleted or not the actor's (EDIT on the model, READ on the run). `actor` may
    be a `TokenCaller` not looked up: the statement then checks the token too, and the version's
    creator is the token's user."""
    guards = guard_params(
        actor, (RegisteredModel, Level.EDIT, "model_guard_"), (Experiment, Level.READ, "run_guard_")
    )
    if guards is None:
        return False
    caller = in_statement(actor)  # then the event's actor comes from the statement's `caller` row
    params = _params(version) | guards
    params |= {"model_name": model_name, "run_uuid": run_uuid, "active": Lifecycle.ACTIVE}
    params |= _event_params(actor=None if caller else actor, action=action, after=after)
    row = execute_committed(CALLER_NAMED_VERSION_WITH_EVENT if caller else NAMED_VERSION_WITH_EVENT, params)
    if row is None:
        return False
    version.pk, version.version, model_id, run_id, version.source, experiment_id, *creator = row
    # The model, run and creator as far as this request knows them; other fields load when read.
    version.model = RegisteredModel.from_db(connection.alias, ["id", "name"], [model_id, model_name])
    version.run = Run.from_db(
        connection.alias, ["id", "uuid", "experiment_id"], [run_id, run_uuid, experiment_id]
    )
    if caller is not None:
        version.created_by = get_user_model().from_db(connection.alias, ["id", "username"], creator)
    version._state.adding = False
    version._state.db = connection.alias
    return True
