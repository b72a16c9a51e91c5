"""Every write to the tracker goes through these functions, whatever the path it came in by."""

from .artifacts import delete_artifact, store_artifact
from .batches import (
    delete_tag,
    log_batch,
    log_batch_to,
    log_metric,
    log_params,
    metric_key_ids,
    set_tags,
    update_metric_summaries,
)
from .datasets import log_inputs
from .experiments import (
    create_experiment,
    delete_experiment,
    delete_experiment_tag,
    restore_experiment,
    set_experiment_tag,
    update_experiment,
)
from .inputs import BatchResult, DatasetSpec, MetricInput, MetricTuple, ParamInput
from .logged_models import (
    ModelMetricInput,
    create_logged_model,
    delete_logged_model,
    delete_logged_model_tag,
    finalize_logged_model,
    link_run_models,
    log_logged_model_params,
    log_model_metrics,
    set_logged_model_tags,
)
from .purge import PurgeReport, purge_deleted_runs
from .runs import (
    PARENT_RUN_TAG,
    RUN_NAME_TAG,
    delete_run,
    finish_run,
    generate_run_name,
    restore_run,
    start_run,
    update_run,
)
from .saved_views import delete_view, save_view

__all__ = [
    "PARENT_RUN_TAG",
    "RUN_NAME_TAG",
    "BatchResult",
    "DatasetSpec",
    "MetricInput",
    "MetricTuple",
    "ModelMetricInput",
    "ParamInput",
    "PurgeReport",
    "create_experiment",
    "create_logged_model",
    "delete_artifact",
    "delete_experiment",
    "delete_experiment_tag",
    "delete_logged_model",
    "delete_logged_model_tag",
    "delete_run",
    "delete_tag",
    "delete_view",
    "finalize_logged_model",
    "finish_run",
    "generate_run_name",
    "link_run_models",
    "log_batch",
    "log_batch_to",
    "log_inputs",
    "log_logged_model_params",
    "log_metric",
    "log_model_metrics",
    "log_params",
    "metric_key_ids",
    "purge_deleted_runs",
    "restore_experiment",
    "restore_run",
    "save_view",
    "set_experiment_tag",
    "set_logged_model_tags",
    "set_tags",
    "start_run",
    "store_artifact",
    "update_experiment",
    "update_metric_summaries",
    "update_run",
]
