from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _

from meterpay.apps.customers import services
from meterpay.apps.customers.models import Account, Customer
from meterpay.apps.organisations.access import access_object, org_objects
from meterpay.apps.payments.meter_credit import meter_side_view
from meterpay.apps.supply.selectors import wallet_view
from meterpay.apps.tariffs import selectors as tariff_selectors
from meterpay.core.roles import Permission
from meterpay.web.forms import CustomerForm
from meterpay.web.views.base import deny, page, querystring_without_page, staff_view


@staff_view()
def customer_list(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    customers = (
        org_objects(user, Customer)
        .annotate(account_count=Count("accounts"))
        .order_by("name", "id")
        .order_by("name", "id")
    )
    q = request.GET.get("q", "").strip()
    if q:
        customers = customers.filter(
            Q(name__icontains=q) | Q(phone__icontains=q) | Q(email__icontains=q)
        )
    return render(
        request,
        "web/customers/list.html",
        {
            "section": "customers",
            "customers": page(request, customers),
            "q": q,
            "query": querystring_without_page(request),
        },
    )


@staff_view(Permission.MANAGE_CUSTOMERS)
def customer_create(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    form = CustomerForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            customer = services.customer_create(
                actor=user, organisation=user.organisation, **form.cleaned_data
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, _("Customer %(name)s created.") % {"name": customer.name})
            return redirect("console:customer_detail", customer.pk)
    return render(request, "web/customers/form.html", {"section": "customers", "form": form})


@staff_view()
def customer_detail(request: HttpRequest, customer_id: int) -> HttpResponse:
    user: Any = request.user
    customer = access_object(user, Customer, customer_id)
    form = CustomerForm(request.POST or None, instance=customer)
    if request.method == "POST":
        if not user.can(Permission.MANAGE_CUSTOMERS):
            deny()
        if form.is_valid():
            services.customer_update(
                actor=user, customer=Customer.objects.get(pk=customer.pk), **form.cleaned_data
            )
            messages.success(request, _("Saved."))
            return redirect("console:customer_detail", customer.pk)
    accounts = Account.objects.filter(customer=customer).prefetch_related("rooms__floor__building")
    return render(
        request,
        "web/customers/detail.html",
        {"section": "customers", "customer": customer, "form": form, "accounts": accounts},
    )


@staff_view()
def account_list(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    accounts = (
        org_objects(user, Account)
        .select_related("customer")
        .prefetch_related("rooms__floor__building")
    )
    status = request.GET.get("status", "")
    mode = request.GET.get("billing_mode", "")
    q = request.GET.get("q", "").strip()
    if status:
        accounts = accounts.filter(status=status)
    if mode:
        accounts = accounts.filter(billing_mode=mode)
    if q:
        accounts = accounts.filter(Q(number__icontains=q) | Q(customer__name__icontains=q))
    return render(
        request,
        "web/accounts/list.html",
        {
            "section": "accounts",
            "accounts": page(request, accounts),
            "status": status,
            "mode": mode,
            "q": q,
            "statuses": Account.Status.choices,
            "modes": Account.BillingMode.choices,
            "query": querystring_without_page(request),
        },
    )


TRANSITIONS = {
    "open": services.account_open,
    "suspend": services.account_suspend,
    "resume": services.account_resume,
    "close": services.account_close,
}


@staff_view()
def account_detail(request: HttpRequest, account_id: int) -> HttpResponse:
    user: Any = request.user
    account = access_object(user, Account.objects.select_related("customer"), account_id)
    if request.method == "POST":
        if not user.can(Permission.MANAGE_ACCOUNTS):
            deny()
        action = TRANSITIONS.get(request.POST.get("action", ""))
        if action is None:
            messages.error(request, _("Unknown action."))
        else:
            try:
                action(actor=user, account=account)
                messages.success(request, _("Done."))
            except ValidationError as exc:
                messages.error(request, "; ".join(exc.messages))
        return redirect("console:account_detail", account.pk)
    rooms = account.rooms.select_related("floor__building__site")
    meters = account.meters.select_related("gateway", "room").order_by("removed_on", "address")
    tariff_assignments = list(tariff_selectors.account_assignments(account))
    now = timezone.now()
    return render(
        request,
        "web/accounts/detail.html",
        {
            "section": "accounts",
            "account": account,
            "rooms": rooms,
            "meters": meters,
            "assignments": tariff_assignments,
            "in_force": tariff_selectors.current_assignments(tariff_assignments, now),
            "now_utc": now,
            "wallet": wallet_view(account),
            "meter_side": meter_side_view(account),
        },
    )
