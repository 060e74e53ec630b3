from django.apps import AppConfig


class Config(AppConfig):
    name = "meterpay.apps.audit"
    label = "audit"
