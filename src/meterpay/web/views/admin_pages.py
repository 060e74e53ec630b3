"""Imports, the audit log and API tokens."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from meterpay.apps.audit.models import AuditEvent
from meterpay.apps.imports import services as imports
from meterpay.apps.imports.models import ImportBatch
from meterpay.apps.imports.parsing import (
    COLUMNS,
    ImportFileError,
    read_rows,
    template_csv,
    template_xlsx,
)
from meterpay.apps.organisations.access import access_object, org_objects
from meterpay.apps.users.models import ApiToken
from meterpay.apps.users.services import api_token_create, api_token_revoke
from meterpay.core.roles import Permission
from meterpay.web.forms import ImportUploadForm, TokenForm
from meterpay.web.views.base import page, staff_view

MAX_IMPORT_BYTES = 5 * 1024 * 1024


@staff_view(Permission.IMPORT_DATA)
def import_list(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    form = ImportUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        if upload.size > MAX_IMPORT_BYTES:
            form.add_error("file", _("The file is larger than 5 MB."))
        else:
            batch = imports.import_preview(
                actor=user,
                organisation=user.organisation,
                kind=form.cleaned_data["kind"],
                filename=upload.name,
                content=upload.read(),
            )
            return redirect("console:import_detail", batch.pk)
    batches = org_objects(user, ImportBatch).select_related("uploaded_by").defer("content")
    return render(
        request,
        "web/imports/list.html",
        {
            "section": "imports",
            "form": form,
            "batches": page(request, batches, 20),
            "columns": COLUMNS,
        },
    )


@staff_view(Permission.IMPORT_DATA)
def import_detail(request: HttpRequest, batch_id: int) -> HttpResponse:
    user: Any = request.user
    batch = access_object(user, ImportBatch, batch_id)
    if request.method == "POST":
        try:
            result = imports.import_commit(actor=user, batch=batch)
        except ValidationError as exc:
            messages.error(request, "; ".join(exc.messages))
        else:
            if result.ok:
                messages.success(request, _("Imported %(n)d rows.") % {"n": result.created})
            else:
                messages.error(
                    request, _("Nothing was imported: %(n)d problems.") % {"n": len(result.errors)}
                )
        return redirect("console:import_detail", batch.pk)
    try:
        rows = read_rows(batch.kind, batch.filename, bytes(batch.content))
    except ImportFileError:
        rows = []
    errors_by_row: dict[Any, list[dict[str, Any]]] = {}
    for error in batch.errors:
        errors_by_row.setdefault(error["row"], []).append(error)
    columns = [c for c, _, _ in COLUMNS[batch.kind]]
    preview = [
        {
            "number": r.number,
            "cells": [r.values.get(c, "") for c in columns],
            "errors": errors_by_row.get(r.number, []),
            "bad_columns": {e["column"] for e in errors_by_row.get(r.number, [])},
        }
        for r in rows
    ]
    return render(
        request,
        "web/imports/detail.html",
        {
            "section": "imports",
            "batch": batch,
            "columns": columns,
            "preview": preview,
            "file_errors": errors_by_row.get(None, []),
        },
    )


@staff_view(Permission.IMPORT_DATA)
def import_template(request: HttpRequest, kind: str, fmt: str) -> HttpResponse:
    if kind not in COLUMNS or fmt not in ("xlsx", "csv"):
        raise Http404
    if fmt == "xlsx":
        response = HttpResponse(
            template_xlsx(kind),
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
    else:
        response = HttpResponse(template_csv(kind), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="meterpay-{kind}-template.{fmt}"'
    return response


@staff_view(Permission.VIEW_AUDIT)
def audit_list(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    events = org_objects(user, AuditEvent)
    action = request.GET.get("action", "").strip()
    if action:
        events = events.filter(action__startswith=action)
    return render(
        request,
        "web/audit/list.html",
        {"section": "audit", "events": page(request, events), "action": action},
    )


@staff_view(Permission.MANAGE_OWN_TOKENS)
def token_list(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    form = TokenForm(request.POST or None)
    new_token = None
    if request.method == "POST":
        if request.POST.get("revoke"):
            token = ApiToken.objects.filter(user=user, pk=request.POST["revoke"]).first()
            if token is None:
                raise Http404
            api_token_revoke(actor=user, token=token)
            messages.success(request, _("Token revoked."))
            return redirect("console:token_list")
        if form.is_valid():
            _token, new_token = api_token_create(
                actor=user, user=user, name=form.cleaned_data["name"]
            )
            form = TokenForm()
    tokens = ApiToken.objects.filter(user=user)
    return render(
        request,
        "web/tokens/list.html",
        {"section": "tokens", "form": form, "tokens": tokens, "new_token": new_token},
    )
