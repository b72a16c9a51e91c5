"""API tokens in Django's admin: browse only, plus a revoke action through the service, so a token
is never re-assigned or un-revoked behind the audit log's back."""

from django.contrib import admin, messages

from config.admin import ReadOnlyAdmin
from config.exceptions import ApplicationError

from .models import ApiToken
from .services import revoke_api_token


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    list_display = ["user", "name", "prefix", "created_at", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    list_select_related = ["user"]
    exclude = ["token_hash"]
    search_fields = ["user__username", "name", "prefix"]
    actions = ["revoke"]

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset):
        for token in queryset:
            try:
                revoke_api_token(user=request.user, token_id=token.pk)
            except ApplicationError as error:
                self.message_user(request, f"{token}: {error}", level=messages.ERROR)
            else:
                self.message_user(request, f"{token}: revoked", level=messages.SUCCESS)
