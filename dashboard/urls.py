from django.urls import path

from .views import experiments, registry, run_table, runs, settings

app_name = "dashboard"

urlpatterns = [
    path("", experiments.experiment_list, name="experiment-list"),
    path("experiments/<int:experiment_id>/runs/", run_table.run_table, name="run-table"),
    path("runs/<str:run_id>/", runs.run_detail, name="run-detail"),
    path("runs/<str:run_id>/artifacts/<path:path>", runs.artifact_download, name="artifact-download"),
    path("runs/<str:run_id>/metrics/<path:key>/series.json", runs.metric_series, name="metric-series"),
    path("registry/", registry.registry, name="registry"),
    path("settings/", settings.settings_page, name="settings"),
    path("settings/tokens/<int:token_id>/revoke/", settings.revoke_token, name="token-revoke"),
]
