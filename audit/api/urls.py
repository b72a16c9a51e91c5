"""Audit resources under /api/v1/audit (read-only)."""

from django.urls import path

from accounts.api import route

from . import views

app_name = "audit-api"

urlpatterns = [
    path("audit/events", route(get=views.AuditEventListApi), name="events"),
    path("audit/verify", route(get=views.AuditVerifyApi), name="verify"),
]
