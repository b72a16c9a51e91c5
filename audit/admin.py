from django.contrib import admin

from config.admin import ReadOnlyAdmin

from .models import AuditCheckpoint, AuditEvent, AuditVerification


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["sequence", "created_at", "actor_name", "action", "object_type", "object_id"]
    list_filter = ["action", "object_type"]
    search_fields = ["object_id", "actor_name", "action"]
    ordering = ["-sequence"]


@admin.register(AuditCheckpoint)
class AuditCheckpointAdmin(ReadOnlyAdmin):
    list_display = ["id", "created_at", "sequence", "hash", "key_id"]
    ordering = ["-sequence"]


@admin.register(AuditVerification)
class AuditVerificationAdmin(ReadOnlyAdmin):
    list_display = ["id", "created_at", "mode", "status", "ok", "checked", "broken_sequence", "finished_at"]
    list_filter = ["status", "mode", "ok"]
