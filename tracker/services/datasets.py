"""Recording which datasets (name, version, digest) a run trained and validated on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import transaction

from audit.services import record_event
from tracker.models import DatasetInput, Run, RunModelLink
from tracker.permissions import Level, require_run_permission
from tracker.validation import validate_text

from .inputs import DatasetSpec
from .key_sets import record_keys
from .logged_models import link_run_models
from .runs import ensure_run_writable

# MLflow's limits; the digest allows a full sha256 where MLflow stops at 36 characters.
_DATASET_LIMITS = {
    "name": 500,
    "digest": 64,
    "version": 100,
    "source_type": 100,
    "source": 65535,
    "context": 100,
    "schema": 1024 * 1024,
    "profile": 16 * 1024 * 1024,
}
# MLflow's limits on an input tag's key and value.
_INPUT_TAG_KEY_LIMIT = 255
_INPUT_TAG_VALUE_LIMIT = 500


def _input_tags(spec: DatasetSpec, where: str) -> list[dict[str, str]]:
    """The input tags as stored: in the order sent, each key and value checked like MLflow's."""
    return [
        {
            "key": validate_text(
                key, field=f"{where}.tags[{i}].key", max_length=_INPUT_TAG_KEY_LIMIT, allow_empty=False
            ),
            "value": validate_text(
                value, field=f"{where}.tags[{i}].value", max_length=_INPUT_TAG_VALUE_LIMIT
            ),
        }
        for i, (key, value) in enumerate(spec.tags)
    ]


def _without_bare_repeats(run: Run, rows: list[DatasetInput]) -> list[DatasetInput]:
    """Leave out an input without a context whose dataset (name and digest) the run already has,
    or gets in this call, under a context: the mlflow client sends the dataset again, bare,
    with every metric logged with `dataset=` (MLflow keeps one input per dataset and run)."""
    if all(row.context for row in rows):
        return rows
    placed = {(row.name, row.digest) for row in rows if row.context}
    placed.update(DatasetInput.objects.filter(run=run).values_list("name", "digest"))
    return [row for row in rows if row.context or (row.name, row.digest) not in placed]


def log_inputs(
    *, actor: Any, run: Run, datasets: Sequence[DatasetSpec], models: Sequence[str] = ()
) -> list[DatasetInput]:
    """Attach dataset inputs (and logged models used as inputs, by id) to a run, all or nothing;
    logging the same (name, digest, context) again is a no-op, and so is logging without a context
    a dataset the run already has."""
    require_run_permission(actor, run, Level.EDIT, action="Logging dataset inputs")
    ensure_run_writable(run)
    rows = []
    for index, spec in enumerate(datasets):
        values = {
            field: validate_text(
                getattr(spec, field),
                field=f"datasets[{index}].{field}",
                max_length=limit,
                allow_empty=field not in {"name", "digest"},
            )
            for field, limit in _DATASET_LIMITS.items()
        }
        rows.append(DatasetInput(run=run, tags=_input_tags(spec, f"datasets[{index}]"), **values))
    with transaction.atomic():
        if models:
            link_run_models(
                actor=actor, run=run, links=[(m, 0) for m in models], direction=RunModelLink.Direction.INPUT
            )
        rows = _without_bare_repeats(run, rows)
        if not rows:
            return list(DatasetInput.objects.filter(run=run))
        DatasetInput.objects.bulk_create(rows, ignore_conflicts=True)
        record_keys(experiment_id=run.experiment_id, keys=[("dataset", row.name) for row in rows])
        record_event(
            actor=actor,
            action="run.inputs_logged",
            target=run,
            after={
                "datasets": [
                    {"name": r.name, "digest": r.digest, "version": r.version, "context": r.context}
                    for r in rows
                ]
            },
        )
    return list(DatasetInput.objects.filter(run=run))
