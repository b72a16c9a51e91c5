from django.urls import path

from .views import experiments, registry, runs, settings, uploads

app_name = "dashboard"

urlpatterns = [
    path("", experiments.experiment_list, name="experiment-list"),
    path("experiments/<int:experiment_id>/runs/", runs.run_table, name="run-table"),
    path("runs/<str:run_id>/", runs.run_detail, name="run-detail"),
    path("runs/<str:run_id>/artifacts/<path:path>", runs.artifact_download, name="artifact-download"),
    path("runs/<str:run_id>/metrics/<path:key>/series.json", runs.metric_series, name="metric-series"),
    path("registry/", registry.registry, name="registry"),
    path("settings/", settings.settings_page, name="settings"),
    path("settings/tokens/<int:token_id>/revoke/", settings.revoke_token, name="token-revoke"),
    path("uploads/", uploads.upload_list, name="upload-list"),
    path("uploads/new/", uploads.upload_new, name="upload-new"),
    path("uploads/<int:upload_id>/", uploads.upload_detail, name="upload-detail"),
    path("uploads/<int:upload_id>/status.json", uploads.upload_status, name="upload-status"),
]
