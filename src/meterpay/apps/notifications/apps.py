from django.apps import AppConfig


class Config(AppConfig):
    name = "meterpay.apps.notifications"
    label = "notifications"
