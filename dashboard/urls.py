from django.urls import path

from .views import compare, edits, experiments, registry, run_table, runs, settings

app_name = "dashboard"

urlpatterns = [
    path("", experiments.experiment_list, name="experiment-list"),
    path("experiments/<int:experiment_id>/runs/", run_table.run_table, name="run-table"),
    path("experiments/<int:experiment_id>/views/", run_table.save_view, name="saved-view-save"),
    path("views/<int:view_id>/delete/", run_table.delete_saved_view, name="saved-view-delete"),
    path("runs/", run_table.runs_of_experiments, name="runs"),
    path("runs/export.csv", run_table.export_runs, name="run-export"),
    path("runs/<str:run_id>/", runs.run_detail, name="run-detail"),
    path("runs/<str:run_id>/artifacts/<path:path>", runs.artifact_download, name="artifact-download"),
    path("runs/<str:run_id>/edit/<str:action>/", edits.run_edit, name="run-edit"),
    path("experiments/<int:experiment_id>/edit/<str:action>/", edits.experiment_edit, name="experiment-edit"),
    path("compare/", compare.compare, name="compare"),
    path("charts/series.json", runs.chart_data, name="chart-series"),
    path("registry/", registry.registry, name="registry"),
    path("settings/", settings.settings_page, name="settings"),
    path("settings/tokens/<int:token_id>/revoke/", settings.revoke_token, name="token-revoke"),
]
