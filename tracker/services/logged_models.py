"""MLflow 3's logged models: create, finalize, tag, parametrise, link to runs, delete."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

from django.db import transaction

from audit.services import record_event
from config.exceptions import Conflict, InvalidInput, NotFound
from config.inputs import TagInput
from tracker.models import (
    Experiment,
    Lifecycle,
    LoggedModel,
    LoggedModelMetric,
    LoggedModelParam,
    LoggedModelStatus,
    LoggedModelTag,
    Run,
    RunModelLink,
)
from tracker.permissions import Level, require_experiment_permission, require_run_permission
from tracker.validation import (
    MAX_METRICS_PER_BATCH,
    MAX_PARAMS_PER_BATCH,
    coerce_int64,
    coerce_metric_value,
    validate_key,
    validate_text,
)

from .inputs import ParamInput
from .runs import ensure_run_writable, generate_run_name
from .validators import check_batch_size, validated_params, validated_tags

MAX_LOGGED_MODEL_NAME_LENGTH = 250
MAX_MODEL_TYPE_LENGTH = 500
MAX_STATUS_MESSAGE_LENGTH = 5000
MAX_MODEL_ID_LENGTH = 64
# MLflow refuses these in a logged model's name: they would break `models:/<name>/...` URIs
# and the `name = '...'` filter its own client builds.
_NAME_FORBIDDEN_CHARACTERS = ("/", ":", ".", "%", '"', "'")
FINAL_STATUSES = (LoggedModelStatus.READY, LoggedModelStatus.UPLOAD_FAILED)
# MLflow sets no limit on tags or links per call; this one is far above what its client sends and
# keeps a call's lookups within every database's limit on query parameters.
MAX_ITEMS_PER_CALL = 1000


class ModelMetricInput(NamedTuple):
    """A run metric that names the logged model it measures (MLflow 3's `model_id`)."""

    model_id: str
    key: str
    value: float
    step: int
    timestamp: int
    dataset_name: str = ""
    dataset_digest: str = ""


def ensure_logged_model_writable(model: LoggedModel) -> None:
    if model.lifecycle != Lifecycle.ACTIVE:
        raise InvalidInput(f"logged model {model.model_id} is deleted", field="model_id")


def _validated_name(name: str) -> str:
    name = validate_text(name, field="name", max_length=MAX_LOGGED_MODEL_NAME_LENGTH)
    if not name:
        return generate_run_name()  # MLflow names unnamed models the way it names runs
    if any(character in name for character in _NAME_FORBIDDEN_CHARACTERS):
        raise InvalidInput(
            f"{name!r} must not contain any of {' '.join(_NAME_FORBIDDEN_CHARACTERS)}", field="name"
        )
    return name


def _locked(model: LoggedModel) -> LoggedModel:
    """The model's row, locked until the transaction ends, and refused when it is deleted."""
    locked = LoggedModel.objects.select_for_update(no_key=True).get(pk=model.pk)
    ensure_logged_model_writable(locked)
    return locked


def create_logged_model(
    *,
    actor: Any,
    experiment: Experiment,
    name: str = "",
    model_type: str = "",
    source_run: Run | None = None,
    params: Sequence[ParamInput] = (),
    tags: Sequence[TagInput] = (),
) -> LoggedModel:
    """A PENDING model with its own artifact folder; the client uploads files, then finalizes it.

    Like MLflow, the source run may belong to another experiment than the model.
    """
    require_experiment_permission(actor, experiment, Level.EDIT, action="Creating a logged model")
    if experiment.lifecycle != Lifecycle.ACTIVE:
        raise InvalidInput(f"experiment {experiment.pk} is deleted", field="experiment_id")
    name = _validated_name(name)
    model_type = validate_text(model_type, field="model_type", max_length=MAX_MODEL_TYPE_LENGTH)
    check_batch_size(params, MAX_PARAMS_PER_BATCH, "params")
    check_batch_size(tags, MAX_ITEMS_PER_CALL, "tags")
    param_values = validated_params(params)
    tag_values = validated_tags(tags)
    with transaction.atomic():
        model = LoggedModel(
            experiment=experiment, name=name, model_type=model_type, source_run=source_run, creator=actor
        )
        model.artifact_uri = f"mlflow-artifacts:/{experiment.pk}/models/{model.model_id}/artifacts"
        model.save()
        LoggedModelParam.objects.bulk_create(
            [LoggedModelParam(model=model, key=k, value=v) for k, v in param_values.items()]
        )
        LoggedModelTag.objects.bulk_create(
            [LoggedModelTag(model=model, key=k, value=v) for k, v in tag_values.items()]
        )
        record_event(
            actor=actor,
            action="logged_model.created",
            target=model,
            after={
                "name": name,
                "experiment": experiment.pk,
                "model_type": model_type,
                "source_run": source_run.uuid if source_run else None,
                "params": param_values,
                "tags": tag_values,
            },
        )
    return model


def finalize_logged_model(
    *, actor: Any, model: LoggedModel, status: str, status_message: str = ""
) -> LoggedModel:
    """Mark the upload of a model's files as done (READY) or failed (UPLOAD_FAILED)."""
    require_run_permission(actor, model, Level.EDIT, action="Finalizing a logged model")
    if status not in FINAL_STATUSES:
        raise InvalidInput(
            f"{status!r} is not one of {', '.join(FINAL_STATUSES)}; a model is finalized as ready "
            "or as failed",
            field="status",
        )
    status_message = validate_text(
        status_message, field="status_message", max_length=MAX_STATUS_MESSAGE_LENGTH
    )
    with transaction.atomic():
        model = _locked(model)
        before = {"status": model.status, "status_message": model.status_message}
        after = {"status": status, "status_message": status_message}
        if after != before:
            model.status, model.status_message = status, status_message
            model.save(update_fields=["status", "status_message", "updated_at"])
            record_event(
                actor=actor, action="logged_model.finalized", target=model, before=before, after=after
            )
    return model


def delete_logged_model(*, actor: Any, model: LoggedModel) -> None:
    """Soft-delete: hidden from reads and searches, kept (with its files) as evidence."""
    require_run_permission(actor, model, Level.MANAGE, action="Deleting a logged model")
    with transaction.atomic():
        model = LoggedModel.objects.select_for_update(no_key=True).get(pk=model.pk)
        if model.lifecycle == Lifecycle.DELETED:
            return  # deleting twice changes nothing, as in MLflow
        model.lifecycle = Lifecycle.DELETED
        model.save(update_fields=["lifecycle", "updated_at"])
        record_event(
            actor=actor,
            action="logged_model.deleted",
            target=model,
            before={"lifecycle": Lifecycle.ACTIVE},
            after={"lifecycle": Lifecycle.DELETED},
        )


def set_logged_model_tags(*, actor: Any, model: LoggedModel, tags: Sequence[TagInput]) -> None:
    """Add or overwrite tags (tags are mutable; the last value of a key repeated in one call wins)."""
    require_run_permission(actor, model, Level.EDIT, action="Tagging a logged model")
    check_batch_size(tags, MAX_ITEMS_PER_CALL, "tags")
    tag_values = validated_tags(tags)
    if not tag_values:
        return
    with transaction.atomic():
        model = _locked(model)
        stored = dict(
            LoggedModelTag.objects.filter(model=model, key__in=tag_values).values_list("key", "value")
        )
        changed = {k: v for k, v in tag_values.items() if stored.get(k) != v}
        if not changed:
            return
        LoggedModelTag.objects.bulk_create(
            [LoggedModelTag(model=model, key=k, value=v) for k, v in changed.items()],
            update_conflicts=True,
            unique_fields=["model", "key"],
            update_fields=["value"],
        )
        record_event(
            actor=actor,
            action="logged_model.tags_set",
            target=model,
            before={k: stored[k] for k in changed if k in stored} or None,
            after=changed,
        )


def delete_logged_model_tag(*, actor: Any, model: LoggedModel, key: str) -> None:
    """Remove one tag; a tag that is not there is an error naming its key, as in MLflow."""
    require_run_permission(actor, model, Level.EDIT, action="Deleting a logged model tag")
    key = validate_text(key, field="tag_key", max_length=250, allow_empty=False)
    with transaction.atomic():
        model = _locked(model)
        tag = LoggedModelTag.objects.filter(model=model, key=key).first()
        if tag is None:
            raise NotFound(f"logged model {model.model_id} has no tag {key!r}", field="tag_key")
        tag.delete()
        record_event(actor=actor, action="logged_model.tag_deleted", target=model, before={key: tag.value})


def log_logged_model_params(*, actor: Any, model: LoggedModel, params: Sequence[ParamInput]) -> None:
    """Add params; like a run's, a param never changes: the same value again is accepted."""
    require_run_permission(actor, model, Level.EDIT, action="Logging logged model params")
    check_batch_size(params, MAX_PARAMS_PER_BATCH, "params")
    param_values = validated_params(params)
    if not param_values:
        return
    with transaction.atomic():
        # Locked so that two clients logging the same key cannot both see it as new.
        model = _locked(model)
        stored = dict(
            LoggedModelParam.objects.filter(model=model, key__in=param_values).values_list("key", "value")
        )
        for key, value in param_values.items():
            if key in stored and stored[key] != value:
                raise Conflict(
                    f"param {key!r} of logged model {model.model_id} was already logged as "
                    f"{stored[key]!r}; it cannot be changed to {value!r}",
                    field=f"params.{key}",
                )
        new = {k: v for k, v in param_values.items() if k not in stored}
        if not new:
            return
        LoggedModelParam.objects.bulk_create(
            [LoggedModelParam(model=model, key=k, value=v) for k, v in new.items()]
        )
        record_event(actor=actor, action="logged_model.params_logged", target=model, after=new)


def _models_by_id(model_ids: Sequence[str], field: str) -> dict[str, int]:
    """Primary keys of the named logged models; an id that does not exist is a 404 naming it."""
    for index, model_id in enumerate(model_ids):
        validate_text(
            model_id, field=f"{field}[{index}].model_id", max_length=MAX_MODEL_ID_LENGTH, allow_empty=False
        )
    found = dict(LoggedModel.objects.filter(model_id__in=set(model_ids)).values_list("model_id", "pk"))
    for index, model_id in enumerate(model_ids):
        if model_id not in found:
            raise NotFound(f"logged model {model_id!r} does not exist", field=f"{field}[{index}].model_id")
    return found


def link_run_models(
    *, actor: Any, run: Run, links: Sequence[tuple[str, int]], direction: str = RunModelLink.Direction.OUTPUT
) -> None:
    """Record that `run` used (input) or produced (output, at a step) the logged models named by id.

    Idempotent: a link already recorded is kept as it is, so a client retry changes nothing.
    """
    require_run_permission(actor, run, Level.EDIT, action="Linking logged models to a run")
    if direction not in RunModelLink.Direction.values:
        raise InvalidInput(
            f"{direction!r} is not one of {', '.join(RunModelLink.Direction.values)}", field="direction"
        )
    ensure_run_writable(run)
    if not links:
        return
    check_batch_size(links, MAX_ITEMS_PER_CALL, "models")
    steps: dict[str, int] = {}
    for index, (model_id, step) in enumerate(links):
        step = (
            coerce_int64(step, field=f"models[{index}].step")
            if direction == RunModelLink.Direction.OUTPUT
            else 0
        )
        steps.setdefault(model_id, step)  # the first mention of a model in one call wins
    with transaction.atomic():
        found = _models_by_id([model_id for model_id, _ in links], "models")
        linked = set(
            RunModelLink.objects.filter(
                run=run, direction=direction, model_id__in=found.values()
            ).values_list("model_id", flat=True)
        )
        new = {model_id: step for model_id, step in steps.items() if found[model_id] not in linked}
        if not new:
            return
        RunModelLink.objects.bulk_create(
            [RunModelLink(run=run, model_id=found[m], direction=direction, step=s) for m, s in new.items()],
            ignore_conflicts=True,
        )
        record_event(
            actor=actor, action="run.models_linked", target=run, after={"direction": direction, "models": new}
        )


# A model metric's natural key (the unique constraint) and its value: (value, is_nan).
_PointKey = tuple[str, str, int, int, str, str]  # model_id, key, step, timestamp, dataset name, digest


def _validated_model_metrics(metrics: Sequence[ModelMetricInput]) -> dict[_PointKey, tuple[float, bool]]:
    """Each distinct point once (the first of a repeated natural key wins, as the database would)."""
    now_ms = int(time.time() * 1000)
    rows: dict[_PointKey, tuple[float, bool]] = {}
    for index, metric in enumerate(metrics):
        where = f"metrics[{index}]"
        key = validate_key(metric.key, field=f"{where}.key")
        value = coerce_metric_value(metric.value, field=f"{where}.value")
        step = 0 if metric.step is None else coerce_int64(metric.step, field=f"{where}.step")
        timestamp = (
            now_ms
            if metric.timestamp is None
            else coerce_int64(metric.timestamp, field=f"{where}.timestamp", minimum=0)
        )
        dataset_name = validate_text(metric.dataset_name, field=f"{where}.dataset_name", max_length=500)
        dataset_digest = validate_text(metric.dataset_digest, field=f"{where}.dataset_digest", max_length=64)
        is_nan = math.isnan(value)
        rows.setdefault(
            (metric.model_id, key, step, timestamp, dataset_name, dataset_digest),
            (0.0 if is_nan else value, is_nan),  # NaN is stored as 0 with is_nan, as for run points
        )
    return rows


def log_model_metrics(*, actor: Any, run: Run, metrics: Sequence[ModelMetricInput]) -> None:
    """Attach metrics logged with a `model_id` to that model (the points are on the run already).

    Called by every metric-logging path whose metrics name a model; without any it costs nothing.
    A point already attached (same model, key, step, timestamp and dataset) is not added again,
    so a retried batch changes nothing.
    """
    if not metrics:
        return
    require_run_permission(actor, run, Level.EDIT, action="Logging logged model metrics")
    ensure_run_writable(run)
    check_batch_size(metrics, MAX_METRICS_PER_BATCH, "metrics")
    rows = _validated_model_metrics(metrics)
    with transaction.atomic():
        found = _models_by_id([metric.model_id for metric in metrics], "metrics")
        stored = set(
            LoggedModelMetric.objects.filter(
                model_id__in=found.values(), key__in={point[1] for point in rows}
            ).values_list("model__model_id", "key", "step", "timestamp", "dataset_name", "dataset_digest")
        )
        new_by_model: dict[str, list[LoggedModelMetric]] = {}
        for point, (value, is_nan) in rows.items():
            if point in stored:
                continue
            model_id, key, step, timestamp, dataset_name, dataset_digest = point
            new_by_model.setdefault(model_id, []).append(
                LoggedModelMetric(
                    model_id=found[model_id],
                    run=run,
                    key=key,
                    value=value,
                    is_nan=is_nan,
                    step=step,
                    timestamp=timestamp,
                    dataset_name=dataset_name,
                    dataset_digest=dataset_digest,
                )
            )
        # Two clients may race on the same point; the unique constraint keeps one of them.
        LoggedModelMetric.objects.bulk_create(
            [metric for new in new_by_model.values() for metric in new], ignore_conflicts=True
        )
        for model_id, new in new_by_model.items():
            record_event(
                actor=actor,
                action="logged_model.metrics_logged",
                object_type=LoggedModel._meta.label_lower,
                object_id=model_id,
                after={"run": run.uuid, "points": len(new), "keys": sorted({m.key for m in new})},
            )
