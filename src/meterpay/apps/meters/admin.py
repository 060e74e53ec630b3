from django.contrib import admin

from meterpay.apps.meters.models import Gateway, Meter


@admin.register(Gateway)
class GatewayAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["identifier", "name", "kind", "protocol", "site", "last_seen_at"]
    list_filter = ["organisation", "kind"]


@admin.register(Meter)
class MeterAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = [
        "address",
        "kind",
        "model",
        "protocol",
        "gateway",
        "room",
        "account",
        "removed_on",
    ]
    list_filter = ["organisation", "kind", "protocol"]
    search_fields = ["address", "serial_number"]
    raw_id_fields = ["gateway", "room", "account", "replaced_by"]
