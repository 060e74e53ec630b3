"""The tenant portal: a tenant user sees their own customer's accounts, balances and meters,
and pays online. The demo's payment page simulates the provider: it produces a genuinely
signed notification (demo keys) that the browser posts to the provider notification endpoint,
the same path a real WeChat Pay / Alipay / forwarding notification takes."""

from __future__ import annotations

import base64
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _

from meterpay.apps.customers.models import Account
from meterpay.apps.payments.meter_credit import meter_side_view
from meterpay.apps.payments.models import PaymentProviderConfig, Recharge
from meterpay.apps.payments.online import (
    online_order_create,
    payment_notification_receive,
    simulate_payment,
)
from meterpay.apps.supply.selectors import wallet_view
from meterpay.core.money import from_minor

NOTIFY_URLS = {
    "wechat": "/api/v1/payments/wechat/notify",
    "alipay": "/api/v1/payments/alipay/notify",
    "forward": "/api/v1/payments/forward/{name}/callback",
}


def _tenant(request: HttpRequest) -> Any:
    user: Any = request.user
    if user.is_staff_member:
        return None
    if user.customer_id is None:
        raise PermissionDenied
    return user


def _own_accounts(user: Any) -> Any:
    return Account.objects.filter(
        customer_id=user.customer_id, organisation_id=user.organisation_id
    )


@login_required
def portal_home(request: HttpRequest) -> HttpResponse:
    user = _tenant(request)
    if user is None:
        return redirect("console:home")
    accounts = list(
        _own_accounts(user)
        .prefetch_related("rooms__floor__building__site", "meters")
        .order_by("status", "number")
    )
    for account in accounts:
        account.wallet_figures = wallet_view(account)  # type: ignore[attr-defined]
        account.meter_side = meter_side_view(account)  # type: ignore[attr-defined]
        account.recent_recharges = Recharge.objects.filter(account=account)[:5]  # type: ignore[attr-defined]
    return render(
        request, "web/portal/home.html", {"customer": user.customer, "accounts": accounts}
    )


def _providers(organisation_id: int) -> list[PaymentProviderConfig]:
    return list(
        PaymentProviderConfig.objects.filter(
            organisation_id=organisation_id, enabled=True
        ).order_by("kind", "name")
    )


@login_required
def portal_pay(request: HttpRequest, account_id: int) -> HttpResponse:
    """Choose an amount and a provider; creates the order and opens the payment page."""
    user = _tenant(request)
    if user is None:
        return redirect("console:home")
    account = _own_accounts(user).filter(pk=account_id).first()
    if account is None:
        raise Http404
    providers = _providers(account.organisation_id)
    error = ""
    if request.method == "POST":
        try:
            order = online_order_create(
                actor=user,
                account=account,
                amount=request.POST.get("amount", ""),
                provider=request.POST.get("provider", ""),
            )
        except ValidationError as exc:
            error = "; ".join(exc.messages)
        else:
            return redirect("portal:pay_order", order.number)
    return render(
        request,
        "web/portal/pay.html",
        {
            "account": account,
            "wallet": wallet_view(account, with_estimate=False),
            "providers": providers,
            "amounts": ["20.00", "50.00", "100.00", "200.00"],
            "error": error,
        },
    )


@login_required
def portal_pay_order(request: HttpRequest, number: str) -> HttpResponse:
    """The simulated provider page. POST answers the signed notification to deliver."""
    user = _tenant(request)
    if user is None:
        return redirect("console:home")
    order = (
        Recharge.objects.select_related("account")
        .filter(
            number=number,
            account__customer_id=user.customer_id,
            organisation_id=user.organisation_id,
        )
        .first()
    )
    if order is None or not order.provider:
        raise Http404
    if request.method == "POST":
        if order.status != Recharge.Status.PENDING:
            return JsonResponse({"detail": "this order is not open"}, status=400)
        sim = simulate_payment(order=order)
        url = NOTIFY_URLS[sim.kind].format(name=sim.provider_name)
        if request.headers.get("X-Simulator") == "fetch":
            return JsonResponse(
                {
                    "url": url,
                    "headers": sim.headers,
                    "content_type": sim.content_type,
                    "body_b64": base64.b64encode(sim.body).decode(),
                    "done": reverse("portal:home"),
                }
            )
        # Without JavaScript: hand the same signed notification to the same receiver.
        result = payment_notification_receive(
            kind=sim.kind, headers=sim.headers, body=sim.body, provider_name=sim.provider_name
        )
        if result.accepted:
            messages.success(request, _("Payment received. Thank you."))
        else:
            messages.error(request, _("The payment was not accepted."))
        return redirect("portal:home")
    return render(
        request,
        "web/portal/pay_order.html",
        {"order": order, "amount": from_minor(order.amount_minor, order.currency)},
    )
