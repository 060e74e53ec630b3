from django.apps import AppConfig


class Config(AppConfig):
    name = "meterpay.cli"
    label = "cli"
