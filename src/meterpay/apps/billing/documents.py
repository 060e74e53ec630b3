"""Printed bills: a stored bill as the print context, the organisation's template for a
language, PDFs of one bill or a whole run, and the template and branding services.

The context holds formatted strings only (``printing.BillContext``), so a manager's template
reaches no object; money is formatted from minor units with two decimals and separators.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models.fields.json import KeyTransform
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from meterpay.apps.audit.services import audit_record
from meterpay.apps.billing.lines import micro_price
from meterpay.apps.billing.models import Bill, BillBranding, BillLine, BillRun, BillTemplate
from meterpay.apps.billing.printing import (
    BillContext,
    ChargeLine,
    ChargeSection,
    MeterRow,
    ShareRow,
    TemplateProblem,
    bill_html,
    bill_pdf,
    bills_pdf_each,
    bills_zip_each,
    default_template,
    sample_context,
    template_check,
)
from meterpay.apps.billing.sharing import share_totals
from meterpay.apps.customers.models import Account
from meterpay.apps.organisations.models import Organisation

type Actor = Any

LANGUAGES = ("zh-hans", "en")
IMAGE_LIMIT = 1024 * 1024
_KINDS: dict[str, str] = {
    Bill.Kind.STATEMENT: "monthly",
    Bill.Kind.REQUEST: "payment_request",
    Bill.Kind.FINAL: "final",
    Bill.Kind.CREDIT_NOTE: "credit_note",
}


def money(minor: int, currency: str = "CNY") -> str:
    """``123456`` → ``"1,234.56"`` (no float anywhere)."""
    sign = "-" if minor < 0 else ""
    whole, cents = divmod(abs(minor), 100)
    return f"{sign}{whole:,}.{cents:02d}"


def _number(value: Decimal | str | None, places: int = 2) -> str:
    if value in (None, ""):
        return ""
    number = Decimal(str(value)).quantize(Decimal(1).scaleb(-places))
    return f"{number:,}"


def _data_uri(content: bytes | memoryview | None, content_type: str) -> str:
    if not content:
        return ""
    return f"data:{content_type};base64,{base64.b64encode(bytes(content)).decode()}"


def _language(language: str) -> str:
    return "en" if language.lower().startswith("en") else "zh-hans"


def template_for(organisation_id: int, language: str) -> str:
    """The organisation's default template of the language, else the built-in one."""
    language = _language(language)
    row = BillTemplate.objects.filter(
        organisation_id=organisation_id, language=language, is_default=True
    ).first()
    return row.body if row is not None else default_template(language)


def _sections(lines: Iterable[BillLine], currency: str) -> list[ChargeSection]:
    sections: list[ChargeSection] = []
    titles = dict(BillLine.Section.choices)
    current: ChargeSection | None = None
    subtotal = 0
    for line in lines:
        title = str(titles.get(line.section, line.section))
        if current is None or current["title"] != title:
            if current is not None:
                current["subtotal"] = money(subtotal, currency)
            current = ChargeSection(title=title, lines=[], subtotal="")
            sections.append(current)
            subtotal = 0
        subtotal += line.amount_minor
        current["lines"].append(
            ChargeLine(
                label=line.label,
                quantity=_number(line.quantity, 2) if line.quantity is not None else "",
                unit=line.unit,
                unit_price=""
                if line.unit_price_micro is None
                else f"{micro_price(line.unit_price_micro).normalize():f}",
                amount=money(line.amount_minor, currency),
            )
        )
    if current is not None:
        current["subtotal"] = money(subtotal, currency)
    return sections


def _percent(ratio: str) -> str:
    return f"{(Decimal(ratio) * 100).quantize(Decimal('0.01'))}%"


type Groups = dict[tuple[str, Any], dict[str, Any]]


class Unset:
    """Not given (a run's bills are given their organisation's branding, which may be none)."""


UNSET = Unset()


def run_groups(run_id: int | None) -> Groups:
    """A run's share totals by (kind, group id), read without the members' rows (a run of a
    large site keeps one row per member in its findings)."""
    if run_id is None:
        return {}
    run = BillRun.objects.filter(pk=run_id)
    totals: list[dict[str, Any]] | None = run.values_list(
        KeyTransform("totals", "findings"), flat=True
    ).first()
    if totals is None:  # a run made before the totals were kept
        groups = run.values_list(KeyTransform("groups", "findings"), flat=True).first()
        totals = share_totals(groups or [])
    return {(f["kind"], f.get("group_id")): f for f in totals}


def _shares(bill: Bill, lines: Iterable[BillLine], groups: Groups) -> list[ShareRow]:
    rules = dict(
        [
            ("ratio", _("By ratio")),
            ("area", _("By room area")),
            ("usage", _("By usage")),
            ("equal", _("Equally")),
        ]
    )
    rows: list[ShareRow] = []
    for line in lines:
        if line.section not in (BillLine.Section.PUBLIC_SHARE, BillLine.Section.LINE_LOSS):
            continue
        kind = "public" if line.section == BillLine.Section.PUBLIC_SHARE else "loss"
        finding = groups.get((kind, line.detail.get("group")), {})
        total = finding.get("quantity") if kind == "public" else finding.get("loss")
        rule = finding.get("rule") or ("usage" if kind == "loss" else "")
        rows.append(
            ShareRow(
                group=str(finding.get("group", line.label)),
                rule_label=str(rules.get(rule, rule))
                if kind == "public"
                else _("Line loss by usage"),
                total_quantity=_number(total),
                unit=line.unit,
                ratio=_percent(line.detail.get("ratio", "0")),
                quantity=_number(line.quantity),
                amount=money(line.amount_minor, bill.currency),
            )
        )
    return rows


def bill_context(
    bill: Bill,
    language: str,
    *,
    branding: BillBranding | Unset | None = UNSET,
    organisation: Organisation | None = None,
    groups: Groups | None = None,
) -> BillContext:
    """The print context of a stored bill, in ``language``. A run passes what its bills share
    (branding or None, organisation, the run's share totals) so that each bill costs no
    statement."""
    language = _language(language)
    with translation.override(language):
        account: Account = bill.account
        if organisation is None:
            organisation = Organisation.objects.get(pk=bill.organisation_id)
        if isinstance(branding, Unset):
            branding = BillBranding.objects.filter(organisation_id=bill.organisation_id).first()
        if groups is None:
            groups = run_groups(bill.run_id)
        lines = list(bill.lines.all())  # prefetched for a run
        rooms = list(account.rooms.all())
        site = rooms[0].floor.building.site.name if rooms else ""
        currency = bill.currency
        paid = bill.due_minor - bill.unpaid_minor
        kinds = dict(Bill.Kind.choices)
        statuses = dict(Bill.Status.choices)
        meter_kinds = {
            "electricity_1p": _("Electricity"),
            "electricity_3p": _("Electricity, three-phase"),
            "water": _("Water"),
        }
        return BillContext(
            organisation={
                "name": organisation.name,
                "address": branding.address if branding else "",
                "phone": branding.phone if branding else "",
                "bank_account": branding.bank_account if branding else "",
                "logo": _data_uri(branding.logo, branding.logo_type) if branding else "",
                "seal": _data_uri(branding.seal, branding.seal_type) if branding else "",
            },
            bill={
                "number": bill.number,
                "kind": _KINDS.get(bill.kind, "monthly"),
                "kind_label": str(kinds.get(bill.kind, bill.kind)),
                "status_label": str(statuses.get(bill.status, bill.status)),
                "period_start": str(bill.period_start or ""),
                "period_end": str(
                    bill.period_end
                    if bill.period_start is None
                    else bill.period_end.fromordinal(bill.period_end.toordinal() - 1)
                ),
                "issued_on": str(timezone.localdate(bill.issued_at)) if bill.issued_at else "",
                "due_on": "" if bill.kind == Bill.Kind.CREDIT_NOTE else str(bill.due_on),
                "currency": currency,
                "total": money(bill.total_minor, currency),
                "paid": money(paid, currency),
                "outstanding": money(
                    bill.unpaid_minor if bill.issued_at else bill.due_minor, currency
                ),
                "replaces": (bill.replaces.number if bill.replaces_id and bill.replaces else "")
                or (bill.credits.number if bill.credits_id and bill.credits else ""),
                "notes": bill.notes,
            },
            customer={"name": account.customer.name, "phone": account.customer.phone},
            account={
                "number": account.number,
                "rooms": ", ".join(
                    f"{r.floor.building.name}-{r.floor.name}-{r.number}" for r in rooms
                ),
                "site": site,
                "billing_mode_label": str(dict(Account.BillingMode.choices)[account.billing_mode]),
            },
            meters=[
                MeterRow(
                    address=m.get("address", ""),
                    kind_label=str(meter_kinds.get(m.get("kind", ""), m.get("kind", ""))),
                    previous_reading=_number(m.get("first_reading")),
                    reading=_number(m.get("last_reading")),
                    multiplier=str(m.get("multiplier", 1)),
                    consumption=_number(m.get("consumption")),
                    unit="m³" if m.get("utility") == "water" else "kWh",
                )
                for m in bill.readings or []
            ],
            sections=_sections(lines, currency),
            shares=_shares(bill, lines, groups),
            payment={"instructions": branding.payment_instructions if branding else ""},
        )


def bill_pdf_bytes(*, bill: Bill, language: str) -> bytes:
    return bill_pdf(
        source=template_for(bill.organisation_id, language), context=bill_context(bill, language)
    )


def _run_items(
    run: BillRun, language: str, bill_ids: Sequence[int] | None = None
) -> list[tuple[str, BillContext]]:
    """Each bill of the run (or those of ``bill_ids``) with its template, in a constant number
    of statements: what the bills share is read once, their lines and rooms prefetched."""
    source = template_for(run.organisation_id, language)
    branding = BillBranding.objects.filter(organisation_id=run.organisation_id).first()
    organisation = Organisation.objects.get(pk=run.organisation_id)
    groups = run_groups(run.pk)
    bills = (
        Bill.objects.filter(run_id=run.pk)
        .exclude(status=Bill.Status.VOID)
        .select_related("account__customer", "replaces", "credits")
        .prefetch_related("lines", "account__rooms__floor__building__site")
        .order_by("number")
    )
    if bill_ids is not None:
        bills = bills.filter(pk__in=list(bill_ids))
    return [
        (
            source,
            bill_context(
                bill, language, branding=branding, organisation=organisation, groups=groups
            ),
        )
        for bill in bills
    ]


def run_pdf_bytes(
    *, run: BillRun, language: str, bill_ids: Sequence[int] | None = None, workers: int = 1
) -> bytes:
    """A whole run (or the bills of ``bill_ids`` in it) as one PDF file."""
    return bills_pdf_each(items=_run_items(run, language, bill_ids), workers=workers)


def run_zip_bytes(
    *, run: BillRun, language: str, workers: int = 1, bill_ids: Sequence[int] | None = None
) -> bytes:
    """A whole run (or the bills of ``bill_ids`` in it) as a zip of one PDF per bill."""
    return bills_zip_each(items=_run_items(run, language, bill_ids), workers=workers)


# ----------------------------------------------------------------- services


@transaction.atomic
def bill_template_save(
    *,
    actor: Actor,
    organisation_id: int,
    values: Mapping[str, Any],
    template: BillTemplate | None = None,
) -> BillTemplate:
    """Save a print template that compiles and renders (``TemplateProblem`` otherwise, and
    nothing is written); a template made the default of its language replaces the old one."""
    row = template or BillTemplate(organisation_id=organisation_id)
    before = (
        {"name": row.name, "language": row.language, "is_default": row.is_default}
        if template
        else None
    )
    for name in ("name", "language", "body", "is_default"):
        if name in values:
            setattr(row, name, values[name])
    if row.language not in LANGUAGES:
        raise TemplateProblem(_("choose Chinese or English"))
    if not (row.name or "").strip():
        raise TemplateProblem(_("a template needs a name"))
    template_check(row.body)
    if row.is_default:
        BillTemplate.objects.filter(
            organisation_id=organisation_id, language=row.language, is_default=True
        ).exclude(pk=row.pk).update(is_default=False)
    row.save()
    audit_record(
        actor=actor,
        action="bill_template.save",
        obj=row,
        before=before,
        after={
            "name": row.name,
            "language": row.language,
            "is_default": row.is_default,
            "size": len(row.body),
        },
    )
    return row


def bill_template_preview_html(*, source: str, language: str) -> str:
    """The template rendered with the sample bill (raises ``TemplateProblem``)."""
    template_check(source)
    return bill_html(source=source, context=sample_context(_language(language)))


def _image(content: bytes | None, content_type: str, field: str) -> None:
    if content is None:
        return
    if len(content) > IMAGE_LIMIT:
        raise TemplateProblem(_("%(field)s: the image is larger than 1 MB") % {"field": field})
    if content_type not in ("image/png", "image/jpeg", "image/svg+xml", "image/gif", "image/webp"):
        raise TemplateProblem(_("%(field)s: PNG, JPEG, GIF, WebP or SVG only") % {"field": field})


@transaction.atomic
def bill_branding_save(
    *,
    actor: Actor,
    organisation_id: int,
    values: Mapping[str, Any],
    logo: bytes | None = None,
    logo_type: str = "",
    seal: bytes | None = None,
    seal_type: str = "",
) -> BillBranding:
    _image(logo, logo_type, _("logo"))
    _image(seal, seal_type, _("seal"))
    row, _created = BillBranding.objects.get_or_create(organisation_id=organisation_id)
    for name in ("address", "phone", "bank_account", "payment_instructions"):
        if name in values:
            setattr(row, name, str(values[name]).strip())
    if logo is not None:
        row.logo, row.logo_type = logo, logo_type
    if seal is not None:
        row.seal, row.seal_type = seal, seal_type
    if values.get("remove_logo"):
        row.logo, row.logo_type = None, ""
    if values.get("remove_seal"):
        row.seal, row.seal_type = None, ""
    row.save()
    audit_record(
        actor=actor,
        action="bill_branding.save",
        obj=row,
        after={
            "address": row.address,
            "phone": row.phone,
            "bank_account": row.bank_account,
            "logo": bool(row.logo),
            "seal": bool(row.seal),
        },
    )
    return row
