from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import include, path

from meterpay.web.views import (
    admin_pages,
    auth,
    billing,
    billing_setup,
    customers,
    finance,
    meters,
    portal,
    rooms,
    sites,
    tariffs,
    users,
    wallet_settings,
    wizard,
)

console = (
    [
        path("", sites.home, name="home"),
        path("sites/", sites.site_tree, name="site_tree"),
        path("sites/add/<str:what>/", sites.site_add, name="site_add"),
        path("sites/<int:site_id>/holidays/", sites.site_holidays, name="site_holidays"),
        path("rooms/", rooms.room_grid, name="room_grid"),
        path("rooms/<int:room_id>/", rooms.room_detail, name="room_detail"),
        path("rooms/<int:room_id>/state/", rooms.room_state, name="room_state"),
        path("rooms/<int:room_id>/operations/", rooms.room_operations, name="room_operations"),
        path(
            "rooms/<int:room_id>/commands/<uuid:command_id>/",
            rooms.room_command,
            name="room_command",
        ),
        path("customers/", customers.customer_list, name="customer_list"),
        path("customers/new/", customers.customer_create, name="customer_create"),
        path("customers/<int:customer_id>/", customers.customer_detail, name="customer_detail"),
        path("accounts/", customers.account_list, name="account_list"),
        path("accounts/open/", wizard.account_wizard, name="account_wizard"),
        path("accounts/<int:account_id>/", customers.account_detail, name="account_detail"),
        path(
            "accounts/<int:account_id>/balance-rules/",
            wallet_settings.account_balance_rules,
            name="account_balance_rules",
        ),
        path("accounts/<int:account_id>/tariffs/", tariffs.account_tariffs, name="account_tariffs"),
        path("meters/", meters.meter_list, name="meter_list"),
        path("meters/new/", meters.meter_create, name="meter_create"),
        path(
            "meters/discrepancies/",
            meters.balance_discrepancies,
            name="balance_discrepancies",
        ),
        path("meters/<int:meter_id>/", meters.meter_detail, name="meter_detail"),
        path("meters/<int:meter_id>/commands/", meters.meter_commands, name="meter_commands"),
        path("gateways/", meters.gateway_list, name="gateway_list"),
        path("gateways/new/", meters.gateway_create, name="gateway_create"),
        path("gateways/<int:gateway_id>/", meters.gateway_detail, name="gateway_detail"),
        path("imports/", admin_pages.import_list, name="import_list"),
        path("imports/<int:batch_id>/", admin_pages.import_detail, name="import_detail"),
        path(
            "imports/template/<str:kind>.<str:fmt>",
            admin_pages.import_template,
            name="import_template",
        ),
        path("tariffs/", tariffs.tariff_list, name="tariff_list"),
        path("tariffs/new/", tariffs.tariff_create, name="tariff_create"),
        path("tariffs/import/", tariffs.tariff_import, name="tariff_import"),
        path("tariffs/<int:tariff_id>/", tariffs.tariff_detail, name="tariff_detail"),
        path("tariffs/<int:tariff_id>/edit/", tariffs.tariff_edit, name="tariff_edit"),
        path("tariffs/<int:tariff_id>/schedule/", tariffs.tariff_schedule, name="tariff_schedule"),
        path("tariffs/<int:tariff_id>/preview/", tariffs.tariff_preview, name="tariff_preview"),
        path("tariffs/<int:tariff_id>/export/", tariffs.tariff_export, name="tariff_export"),
        path("audit/", admin_pages.audit_list, name="audit_list"),
        path("finance/", finance.finance_orders, name="finance_orders"),
        path("finance/income/", finance.finance_income, name="finance_income"),
        path(
            "finance/reconciliation/",
            finance.finance_reconciliation,
            name="finance_reconciliation",
        ),
        path("finance/shift/", finance.finance_shift, name="finance_shift"),
        path("finance/accounts/<int:account_id>/", finance.finance_account, name="finance_account"),
        path(
            "finance/receipts/<int:recharge_id>/", finance.finance_receipt, name="finance_receipt"
        ),
        path(
            "finance/recharges/<int:recharge_id>/confirm/",
            finance.finance_confirm,
            name="finance_confirm",
        ),
        path("billing/", billing.bill_run_list, name="bill_run_list"),
        path("billing/runs/new/", billing.bill_run_new, name="bill_run_new"),
        path("billing/runs/<int:run_id>/", billing.bill_run_detail, name="bill_run_detail"),
        path("billing/runs/<int:run_id>/pdf/", billing.bill_run_pdf, name="bill_run_pdf"),
        path("billing/runs/<int:run_id>/zip/", billing.bill_run_zip, name="bill_run_zip"),
        path("billing/bills/", billing.bill_list, name="bill_list"),
        path("billing/bills/<int:bill_id>/", billing.bill_detail, name="bill_detail"),
        path("billing/bills/<int:bill_id>/pdf/", billing.bill_pdf, name="bill_pdf"),
        path("billing/payments/", billing.bill_payments, name="bill_payments"),
        path("billing/arrears/", billing.bill_arrears, name="bill_arrears"),
        path("billing/charges/", billing_setup.charge_item_list, name="charge_item_list"),
        path("billing/charges/new/", billing_setup.charge_item_create, name="charge_item_create"),
        path(
            "billing/charges/<int:item_id>/",
            billing_setup.charge_item_detail,
            name="charge_item_detail",
        ),
        path(
            "billing/charges/<int:item_id>/edit/",
            billing_setup.charge_item_edit,
            name="charge_item_edit",
        ),
        path(
            "billing/public-areas/",
            billing_setup.allocation_group_list,
            name="allocation_group_list",
        ),
        path(
            "billing/public-areas/new/",
            billing_setup.allocation_group_create,
            name="allocation_group_create",
        ),
        path(
            "billing/public-areas/<int:group_id>/",
            billing_setup.allocation_group_detail,
            name="allocation_group_detail",
        ),
        path(
            "billing/public-areas/<int:group_id>/edit/",
            billing_setup.allocation_group_edit,
            name="allocation_group_edit",
        ),
        path("billing/line-loss/", billing_setup.loss_group_list, name="loss_group_list"),
        path("billing/line-loss/new/", billing_setup.loss_group_create, name="loss_group_create"),
        path(
            "billing/line-loss/<int:group_id>/",
            billing_setup.loss_group_detail,
            name="loss_group_detail",
        ),
        path(
            "billing/line-loss/<int:group_id>/edit/",
            billing_setup.loss_group_edit,
            name="loss_group_edit",
        ),
        path(
            "billing/grid-readings/<int:reading_id>/photo/",
            billing_setup.grid_reading_photo,
            name="grid_reading_photo",
        ),
        path("billing/templates/", billing_setup.bill_template_list, name="bill_template_list"),
        path(
            "billing/templates/new/",
            billing_setup.bill_template_create,
            name="bill_template_create",
        ),
        path(
            "billing/templates/<int:template_id>/",
            billing_setup.bill_template_edit,
            name="bill_template_edit",
        ),
        path("billing/branding/", billing_setup.bill_branding, name="bill_branding"),
        path("billing/schedules/", billing_setup.bill_schedules, name="bill_schedules"),
        path("settings/balance-policy/", wallet_settings.balance_policy, name="balance_policy"),
        path(
            "settings/payment-providers/",
            wallet_settings.payment_provider_list,
            name="payment_provider_list",
        ),
        path(
            "settings/payment-providers/new/",
            wallet_settings.payment_provider_create,
            name="payment_provider_create",
        ),
        path(
            "settings/payment-providers/<int:provider_id>/",
            wallet_settings.payment_provider_edit,
            name="payment_provider_edit",
        ),
        path(
            "settings/notifications/",
            wallet_settings.notification_channel_list,
            name="notification_channel_list",
        ),
        path(
            "settings/notifications/new/",
            wallet_settings.notification_channel_create,
            name="notification_channel_create",
        ),
        path(
            "settings/notifications/<int:channel_id>/",
            wallet_settings.notification_channel_edit,
            name="notification_channel_edit",
        ),
        path(
            "settings/notifications/<int:channel_id>/test/",
            wallet_settings.notification_channel_test,
            name="notification_channel_test",
        ),
        path("settings/tokens/", admin_pages.token_list, name="token_list"),
        path("settings/users/", users.user_list, name="user_list"),
        path("settings/users/<int:user_id>/", users.user_change, name="user_change"),
    ],
    "console",
)

portal_urls = (
    [
        path("", portal.portal_home, name="home"),
        path("accounts/<int:account_id>/pay/", portal.portal_pay, name="pay"),
        path("pay/<str:number>/", portal.portal_pay_order, name="pay_order"),
    ],
    "portal",
)

urlpatterns = [
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="web/auth/login.html", redirect_authenticated_user=True
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "password/change/",
        auth.PasswordChangeView.as_view(),
        name="password_change",
    ),
    path(
        "password/change/done/",
        auth_views.PasswordChangeDoneView.as_view(template_name="web/auth/message.html"),
        name="password_change_done",
    ),
    path(
        "password/reset/",
        auth_views.PasswordResetView.as_view(
            template_name="web/auth/password_reset.html",
            email_template_name="web/auth/password_reset_email.txt",
        ),
        name="password_reset",
    ),
    path(
        "password/reset/sent/",
        auth_views.PasswordResetDoneView.as_view(template_name="web/auth/message.html"),
        name="password_reset_done",
    ),
    path(
        "password/reset/<uidb64>/<token>/",
        auth.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "password/reset/complete/",
        auth_views.PasswordResetCompleteView.as_view(template_name="web/auth/message.html"),
        name="password_reset_complete",
    ),
    path("portal/", include(portal_urls)),
    path("", include(console)),
]
