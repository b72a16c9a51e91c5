from django.urls import path

from . import views

app_name = "dashboard"

urlpatterns = [
    path("", views.experiment_list, name="experiment-list"),
    path("experiments/<int:experiment_id>/runs/", views.run_table, name="run-table"),
    path("runs/<str:run_id>/", views.run_detail, name="run-detail"),
    path("runs/<str:run_id>/artifacts/<path:path>", views.artifact_download, name="artifact-download"),
    path("runs/<str:run_id>/metrics/<path:key>/series.json", views.metric_series, name="metric-series"),
    path("registry/", views.registry, name="registry"),
    path("settings/", views.settings_page, name="settings"),
    path("settings/tokens/<int:token_id>/revoke/", views.revoke_token, name="token-revoke"),
]
