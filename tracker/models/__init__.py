from .artifacts import Artifact
from .datasets import DatasetInput
from .experiments import DEFAULT_EXPERIMENT_ID, Experiment, ExperimentTag, Lifecycle
from .metrics import MetricKey, MetricPoint, MetricSummary
from .runs import Param, Run, RunStatus, Tag

__all__ = [
    "DEFAULT_EXPERIMENT_ID",
    "Artifact",
    "DatasetInput",
    "Experiment",
    "ExperimentTag",
    "Lifecycle",
    "MetricKey",
    "MetricPoint",
    "MetricSummary",
    "Param",
    "Run",
    "RunStatus",
    "Tag",
]
