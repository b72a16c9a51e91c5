"""MLflow 3's logged models: create, finalize, tag, parametrise, link to runs, delete."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from tracker.models import Experiment, LoggedModel, Run, RunModelLink

from .inputs import ParamInput, TagInput


class ModelMetricInput(NamedTuple):
    """A run metric that names the logged model it measures (MLflow 3's `model_id`)."""

    model_id: str
    key: str
    value: float
    step: int
    timestamp: int
    dataset_name: str = ""
    dataset_digest: str = ""


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
    raise NotImplementedError


def finalize_logged_model(
    *, actor: Any, model: LoggedModel, status: str, status_message: str = ""
) -> LoggedModel:
    raise NotImplementedError


def delete_logged_model(*, actor: Any, model: LoggedModel) -> None:
    raise NotImplementedError


def set_logged_model_tags(*, actor: Any, model: LoggedModel, tags: Sequence[TagInput]) -> None:
    raise NotImplementedError


def delete_logged_model_tag(*, actor: Any, model: LoggedModel, key: str) -> None:
    raise NotImplementedError


def log_logged_model_params(*, actor: Any, model: LoggedModel, params: Sequence[ParamInput]) -> None:
    raise NotImplementedError


def link_run_models(
    *, actor: Any, run: Run, links: Sequence[tuple[str, int]], direction: str = RunModelLink.Direction.OUTPUT
) -> None:
    """Record that `run` used (input) or produced (output, at a step) the logged models named by id."""
    raise NotImplementedError


def log_model_metrics(*, actor: Any, run: Run, metrics: Sequence[ModelMetricInput]) -> None:
    """Attach metrics logged with a `model_id` to that model (the points are on the run already)."""
    raise NotImplementedError
