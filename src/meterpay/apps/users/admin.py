from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from meterpay.apps.users.models import ApiToken, User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):  # type: ignore[type-arg]
    list_display = ["username", "organisation", "role", "customer", "is_active", "last_login"]
    list_filter = ["organisation", "role", "is_active"]
    fieldsets = (
        *DjangoUserAdmin.fieldsets,  # type: ignore[misc]
        ("meterpay", {"fields": ("organisation", "role", "customer")}),
    )
    raw_id_fields = ["customer"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["name", "prefix", "user", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["prefix", "key_hash", "created_at", "last_used_at"]
