"""Every write to the tracker goes through these functions, whatever the path it came in by."""

from .artifacts import delete_artifact, store_artifact
from .batches import (
    delete_tag,
    log_batch,
    log_metric,
    log_metrics,
    log_params,
    metric_key_ids,
    set_tags,
    update_metric_summaries,
)
from .datasets import log_inputs
from .experiments import (
    create_experiment,
    delete_experiment,
    rename_experiment,
    restore_experiment,
    set_experiment_tag,
    update_experiment,
)
from .inputs import BatchResult, DatasetSpec, MetricInput, ParamInput, TagInput
from .runs import delete_run, finish_run, generate_run_name, restore_run, start_run, update_run

__all__ = [
    "BatchResult",
    "DatasetSpec",
    "MetricInput",
    "ParamInput",
    "TagInput",
    "create_experiment",
    "delete_artifact",
    "delete_experiment",
    "delete_run",
    "delete_tag",
    "finish_run",
    "generate_run_name",
    "log_batch",
    "log_inputs",
    "log_metric",
    "log_metrics",
    "log_params",
    "metric_key_ids",
    "rename_experiment",
    "restore_experiment",
    "restore_run",
    "set_experiment_tag",
    "set_tags",
    "start_run",
    "store_artifact",
    "update_experiment",
    "update_metric_summaries",
    "update_run",
]
