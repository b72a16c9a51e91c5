"""Audit resources under /api/v1/audit (read-only, except asking for a chain check)."""

from django.urls import path

from config.api import route

from . import views

app_name = "audit-api"

urlpatterns = [
    path("audit/events", route(get=views.AuditEventListApi), name="events"),
    path("audit/events/export", route(get=views.AuditEventExportApi), name="events-export"),
    path("audit/checkpoints", route(get=views.AuditCheckpointListApi), name="checkpoints"),
    path("audit/checkpoints/download", route(get=views.AuditCheckpointFileApi), name="checkpoints-download"),
    path(
        "audit/checkpoints/<int:checkpoint_id>",
        route(get=views.AuditCheckpointDownloadApi),
        name="checkpoint",
    ),
    path("audit/public-key", route(get=views.AuditPublicKeyApi), name="public-key"),
    path("audit/verify", route(get=views.AuditVerifyApi, post=views.AuditVerifyStartApi), name="verify"),
]
