from django.apps import AppConfig


class Config(AppConfig):
    name = "meterpay.apps.payments"
    label = "payments"

    def ready(self) -> None:
        from meterpay.apps.control.services import CREDIT_FINISHED_HOOKS
        from meterpay.apps.payments.meter_credit import credit_finished

        if credit_finished not in CREDIT_FINISHED_HOOKS:
            CREDIT_FINISHED_HOOKS.append(credit_finished)
