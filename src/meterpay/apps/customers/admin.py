from django.contrib import admin

from meterpay.apps.customers.models import Account, Customer


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["name", "kind", "phone", "email", "organisation"]
    list_filter = ["organisation", "kind"]
    search_fields = ["name", "phone", "email"]


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["number", "customer", "billing_mode", "billing_side", "status", "organisation"]
    list_filter = ["organisation", "status", "billing_mode"]
    search_fields = ["number", "customer__name"]
    raw_id_fields = ["customer", "rooms"]
