from django.apps import AppConfig


class Config(AppConfig):
    name = "meterpay.web"
    label = "web"
