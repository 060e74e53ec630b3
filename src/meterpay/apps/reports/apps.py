from django.apps import AppConfig


class Config(AppConfig):
    name = "meterpay.apps.reports"
    label = "reports"
