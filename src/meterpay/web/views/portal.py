"""The tenant portal: a tenant user sees their own customer's accounts, rooms and meters."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from meterpay.apps.customers.models import Account


@login_required
def portal_home(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    if user.is_staff_member:
        return redirect("console:home")
    if user.customer_id is None:
        raise PermissionDenied
    accounts = (
        Account.objects.filter(customer_id=user.customer_id, organisation_id=user.organisation_id)
        .prefetch_related("rooms__floor__building__site", "meters")
        .order_by("status", "number")
    )
    return render(
        request, "web/portal/home.html", {"customer": user.customer, "accounts": accounts}
    )
