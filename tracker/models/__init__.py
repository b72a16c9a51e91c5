from .artifacts import Artifact, ArtifactOwner
from .datasets import DatasetInput
from .experiments import DEFAULT_EXPERIMENT_ID, Experiment, ExperimentPermission, ExperimentTag, Lifecycle
from .logged_models import (
    LoggedModel,
    LoggedModelMetric,
    LoggedModelParam,
    LoggedModelStatus,
    LoggedModelTag,
    RunModelLink,
)
from .metrics import ROLLUP_WIDTHS, MetricKey, MetricPoint, MetricRollup, MetricSummary
from .run_table import ExperimentKey, SavedView
from .runs import Param, Run, RunStatus, Tag
from .uploads import BulkUpload

__all__ = [
    "DEFAULT_EXPERIMENT_ID",
    "ROLLUP_WIDTHS",
    "Artifact",
    "ArtifactOwner",
    "BulkUpload",
    "DatasetInput",
    "Experiment",
    "ExperimentKey",
    "ExperimentPermission",
    "ExperimentTag",
    "Lifecycle",
    "LoggedModel",
    "LoggedModelMetric",
    "LoggedModelParam",
    "LoggedModelStatus",
    "LoggedModelTag",
    "MetricKey",
    "MetricPoint",
    "MetricRollup",
    "MetricSummary",
    "Param",
    "Run",
    "RunModelLink",
    "RunStatus",
    "SavedView",
    "Tag",
]
