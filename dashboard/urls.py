from django.urls import path

from .views import audit, compare, edits, experiments, registry, reviews, run_table, runs, settings, uploads

app_name = "dashboard"

urlpatterns = [
    path("", experiments.experiment_list, name="experiment-list"),
    path("experiments/<int:experiment_id>/runs/", run_table.run_table, name="run-table"),
    path("experiments/<int:experiment_id>/views/", run_table.save_view, name="saved-view-save"),
    path("views/<int:view_id>/delete/", run_table.delete_saved_view, name="saved-view-delete"),
    path("runs/", run_table.runs_of_experiments, name="runs"),
    path("runs/export.csv", run_table.export_runs, name="run-export"),
    path("runs/count.json", run_table.run_count, name="run-count"),
    path("runs/<str:run_id>/", runs.run_detail, name="run-detail"),
    path("runs/<str:run_id>/artifacts/<path:path>", runs.artifact_download, name="artifact-download"),
    path("runs/<str:run_id>/edit/<str:action>/", edits.run_edit, name="run-edit"),
    path("experiments/<int:experiment_id>/edit/<str:action>/", edits.experiment_edit, name="experiment-edit"),
    path("compare/", compare.compare, name="compare"),
    path("charts/series.json", runs.chart_data, name="chart-series"),
    path("registry/", registry.registry, name="registry"),
    path("registry/<str:name>/", registry.model_detail, name="model-detail"),
    path("registry/<str:name>/policy/", registry.model_policy, name="model-policy"),
    path("registry/<str:name>/timeline/", registry.model_timeline, name="model-timeline"),
    path("registry/<str:name>/versions/<int:version>/", registry.version_detail, name="version-detail"),
    path(
        "registry/<str:name>/versions/<int:version>/request/",
        registry.version_request,
        name="version-request",
    ),
    path("registry/<str:name>/versions/<int:version>/force/", registry.version_force, name="version-force"),
    path("registry/<str:name>/versions/<int:version>/why/", registry.version_lineage, name="version-lineage"),
    path("reviews/", reviews.review_queue, name="review-queue"),
    path("reviews/<int:request_id>/", reviews.request_detail, name="request-detail"),
    path("reviews/<int:request_id>/review/", reviews.request_review, name="request-review"),
    path("reviews/<int:request_id>/withdraw/", reviews.request_withdraw, name="request-withdraw"),
    path("audit/", audit.audit_trail, name="audit"),
    path("audit/export/", audit.audit_export, name="audit-export"),
    path("audit/check/", audit.audit_check, name="audit-check"),
    path("audit/checkpoints/", audit.checkpoints_download, name="audit-checkpoints"),
    path("audit/checkpoints/<int:checkpoint_id>/", audit.checkpoint_download, name="audit-checkpoint"),
    path("audit/public-key/", audit.public_key_download, name="audit-public-key"),
    path("settings/", settings.settings_page, name="settings"),
    path("settings/tokens/<int:token_id>/revoke/", settings.revoke_token, name="token-revoke"),
    path("uploads/", uploads.upload_list, name="upload-list"),
    path("uploads/new/", uploads.upload_new, name="upload-new"),
    path("uploads/<int:upload_id>/", uploads.upload_detail, name="upload-detail"),
    path("uploads/<int:upload_id>/status.json", uploads.upload_status, name="upload-status"),
]
