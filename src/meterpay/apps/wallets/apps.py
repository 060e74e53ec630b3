from django.apps import AppConfig


class Config(AppConfig):
    """History only: the migrations that created the money tables before they moved to the
    ledger, notifications, supply, payments and billing apps (docs/decisions/wallets-split.md).
    Databases created before the split need them to migrate; the app has no models or code."""

    name = "meterpay.apps.wallets"
    label = "wallets"
