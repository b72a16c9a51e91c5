from .artifacts import Artifact, ArtifactOwner
from .datasets import DatasetInput
from .experiments import DEFAULT_EXPERIMENT_ID, Experiment, ExperimentTag, Lifecycle
from .logged_models import (
    LoggedModel,
    LoggedModelMetric,
    LoggedModelParam,
    LoggedModelStatus,
    LoggedModelTag,
    RunModelLink,
)
from .metrics import MetricKey, MetricPoint, MetricSummary
from .runs import Param, Run, RunStatus, Tag
from .uploads import BulkUpload

__all__ = [
    "DEFAULT_EXPERIMENT_ID",
    "Artifact",
    "ArtifactOwner",
    "BulkUpload",
    "DatasetInput",
    "Experiment",
    "ExperimentTag",
    "Lifecycle",
    "LoggedModel",
    "LoggedModelMetric",
    "LoggedModelParam",
    "LoggedModelStatus",
    "LoggedModelTag",
    "MetricKey",
    "MetricPoint",
    "MetricSummary",
    "Param",
    "Run",
    "RunModelLink",
    "RunStatus",
    "Tag",
]
