from django.contrib import admin

from meterpay.apps.audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Read-only: the audit log is never edited."""

    list_display = ["at", "organisation", "actor_label", "action", "object_repr"]
    list_filter = ["organisation", "action"]
    search_fields = ["object_repr", "actor_label", "action"]

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False
