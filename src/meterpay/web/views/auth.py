"""Django's password views, with the change written to the audit log (never the password)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import views as auth_views
from django.http import HttpResponse

from meterpay.apps.audit.services import audit_record


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "web/auth/password_change.html"

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        audit_record(actor=self.request.user, action="user.password_change", obj=form.user)
        return response


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "web/auth/password_reset_confirm.html"

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        audit_record(actor=form.user, action="user.password_reset", obj=form.user)
        return response
