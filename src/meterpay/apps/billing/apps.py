from django.apps import AppConfig


class Config(AppConfig):
    name = "meterpay.apps.billing"
    label = "billing"

    def ready(self) -> None:
        from meterpay.apps.billing.bills import postpaid_arrears
        from meterpay.apps.billing.settlement import settle_on_close
        from meterpay.apps.customers.services import ACCOUNT_CLOSE_HOOKS
        from meterpay.apps.supply.services import ARREARS_SOURCES

        if settle_on_close not in ACCOUNT_CLOSE_HOOKS:
            ACCOUNT_CLOSE_HOOKS.append(settle_on_close)
        if postpaid_arrears not in ARREARS_SOURCES:
            ARREARS_SOURCES.append(postpaid_arrears)
