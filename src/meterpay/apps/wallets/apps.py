from django.apps import AppConfig


class Config(AppConfig):
    name = "meterpay.apps.wallets"
    label = "wallets"

    def ready(self) -> None:
        from meterpay.apps.customers.services import ACCOUNT_CLOSE_HOOKS
        from meterpay.apps.wallets.services import settle_on_close

        if settle_on_close not in ACCOUNT_CLOSE_HOOKS:
            ACCOUNT_CLOSE_HOOKS.append(settle_on_close)

        from meterpay.apps.control.services import CREDIT_FINISHED_HOOKS
        from meterpay.apps.wallets.meter_side import credit_finished

        if credit_finished not in CREDIT_FINISHED_HOOKS:
            CREDIT_FINISHED_HOOKS.append(credit_finished)
