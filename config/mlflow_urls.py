"""Where the mlflow client finds us: MLFLOW_TRACKING_URI=http://host:8000 puts every call under
/api/2.0/mlflow/, file transfers under /api/2.0/mlflow-artifacts/, and the capability probe at
/api/3.0/mlflow/server-info. Tracking and registry endpoints come from their own apps."""

from django.urls import include, path, re_path

from registry.mlflow_api.urls import REGISTRY_ENDPOINTS, V3_PERMISSION_ENDPOINTS
from tracker.mlflow_api.ajax import AJAX_ENDPOINTS
from tracker.mlflow_api.protocol import unknown_endpoint, url_patterns
from tracker.mlflow_api.server_info import server_info
from tracker.mlflow_api.urls import ARTIFACT_ENDPOINTS, TRACKING_ENDPOINTS

urlpatterns = [
    path("api/2.0/mlflow/", include(url_patterns([*TRACKING_ENDPOINTS, *REGISTRY_ENDPOINTS]))),
    path("api/2.0/mlflow-artifacts/", include(url_patterns(ARTIFACT_ENDPOINTS))),
    path("api/3.0/mlflow/", include(url_patterns([*server_info, *V3_PERMISSION_ENDPOINTS]))),
    # MLflow's web UI calls the same endpoints under /ajax-api, plus a few of its own.
    path(
        "ajax-api/2.0/mlflow/",
        include(url_patterns([*TRACKING_ENDPOINTS, *REGISTRY_ENDPOINTS, *AJAX_ENDPOINTS])),
    ),
    re_path(r"^api/[23]\.0/mlflow(-artifacts)?/", unknown_endpoint),
    # MLflow 3's other surfaces (its UI's ajax-api, GraphQL, the AI gateway, OTLP traces): a clear
    # JSON ENDPOINT_NOT_FOUND rather than the dashboard's HTML 404.
    re_path(r"^ajax-api/[23]\.0/", unknown_endpoint),
    re_path(r"^(ajax-api/)?graphql/?$", unknown_endpoint),
    re_path(r"^(api/[23]\.0/)?gateway(/|$)", unknown_endpoint),
    re_path(r"^api/[23]\.0/endpoints(/|$)", unknown_endpoint),
    re_path(r"^v1/traces/?$", unknown_endpoint),
]
