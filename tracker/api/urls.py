"""Tracker resources under /api/v1; `route` picks the operation's view by HTTP method."""

from django.urls import path

from config.api import route

from .views import artifacts, experiments, metrics, permissions, runs, uploads

app_name = "tracker-api"

urlpatterns = [
    path(
        "experiments",
        route(get=experiments.ExperimentListApi, post=experiments.ExperimentCreateApi),
        name="experiments",
    ),
    path(
        "experiments/<str:experiment_id>",
        route(
            get=experiments.ExperimentGetApi,
            patch=experiments.ExperimentUpdateApi,
            delete=experiments.ExperimentDeleteApi,
        ),
        name="experiment",
    ),
    path(
        "experiments/<str:experiment_id>/restore",
        route(post=experiments.ExperimentRestoreApi),
        name="experiment-restore",
    ),
    path(
        "experiments/<str:experiment_id>/runs",
        route(get=runs.ExperimentRunListApi),
        name="experiment-runs",
    ),
    path(
        "experiments/<str:experiment_id>/permissions",
        route(get=permissions.ExperimentPermissionListApi),
        name="experiment-permissions",
    ),
    path(
        "experiments/<str:experiment_id>/permissions/<str:username>",
        route(
            get=permissions.ExperimentPermissionGetApi,
            put=permissions.ExperimentPermissionSetApi,
            delete=permissions.ExperimentPermissionDeleteApi,
        ),
        name="experiment-permission",
    ),
    path("runs", route(get=runs.RunListApi, post=runs.RunCreateApi), name="runs"),
    path(
        "runs/<str:run_id>",
        route(get=runs.RunGetApi, patch=runs.RunUpdateApi, delete=runs.RunDeleteApi),
        name="run",
    ),
    path("runs/<str:run_id>/restore", route(post=runs.RunRestoreApi), name="run-restore"),
    path("runs/<str:run_id>/log-batch", route(post=runs.RunLogBatchApi), name="run-log-batch"),
    path("runs/<str:run_id>/tags/<path:key>", route(delete=runs.RunTagDeleteApi), name="run-tag"),
    path(
        "runs/<str:run_id>/datasets",
        route(get=runs.RunDatasetListApi, post=runs.RunDatasetLogApi),
        name="run-datasets",
    ),
    path("runs/<str:run_id>/metrics", route(get=metrics.RunMetricListApi), name="run-metrics"),
    # Metric keys may contain '/'; the greedy <path:key> still leaves the last segment to the suffix.
    path(
        "runs/<str:run_id>/metrics/<path:key>/history",
        route(get=metrics.MetricHistoryApi),
        name="metric-history",
    ),
    path(
        "runs/<str:run_id>/metrics/<path:key>/series",
        route(get=metrics.MetricSeriesApi),
        name="metric-series",
    ),
    path("metrics/series", route(get=metrics.ChartSeriesApi), name="chart-series"),
    path(
        "runs/<str:run_id>/artifacts",
        route(get=artifacts.ArtifactListApi, post=artifacts.ArtifactUploadApi),
        name="artifacts",
    ),
    path(
        "runs/<str:run_id>/artifacts/<path:path>",
        route(
            get=artifacts.ArtifactDownloadApi,
            put=artifacts.ArtifactPutApi,
            delete=artifacts.ArtifactDeleteApi,
        ),
        name="artifact",
    ),
    path("uploads", route(get=uploads.UploadListApi, post=uploads.UploadCreateApi), name="uploads"),
    path("uploads/<str:upload_id>", route(get=uploads.UploadGetApi), name="upload"),
]
