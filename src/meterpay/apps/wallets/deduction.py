"""Platform-side deduction: new validated intervals of an account's meter → a ledger deduction.

For each (account, meter) a :class:`DeductionState` holds the rating accumulator
(``incremental_charge``'s ``state``) and the end of the last rated interval. Rating the next
intervals, persisting the state, posting the deduction and evaluating alarms / cut-off happen
in one transaction, so a crash can neither lose nor double a deduction; the deduction's
idempotency key names the meter and the rated period.

Explicit entry points (no signals): :func:`meter_deduct` after a read created an interval (the
gateway path calls it, or the periodic :func:`deductions_run` sweep catches up).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.db import transaction

from meterpay.apps.customers.models import Account
from meterpay.apps.meters.models import Meter
from meterpay.apps.organisations.models import Organisation
from meterpay.apps.readings.models import Interval
from meterpay.apps.tariffs import selectors
from meterpay.apps.wallets import services
from meterpay.apps.wallets.models import DeductionState, JournalEntry
from meterpay.apps.wallets.supply import policy_row
from meterpay.core import tariffs
from meterpay.core.ledger import ChargeType
from meterpay.core.money import round_money

log = logging.getLogger(__name__)
ACTOR = "rating"
MAX_INTERVALS_PER_RUN = 2000

#: Tariff lookup: (account, meter, at) -> (tariff, account terms) or None. Replaceable in tests.
TariffLookup = Callable[
    [Account, Meter, datetime], "tuple[tariffs.Tariff, tariffs.AccountTerms] | None"
]


def _tariffs_app_lookup(
    account: Account, meter: Meter, at: datetime
) -> tuple[tariffs.Tariff, tariffs.AccountTerms] | None:
    """The assignment in force from the tariffs app."""
    utility = "water" if meter.kind == Meter.Kind.WATER else "electricity"
    assignment = selectors.tariff_in_force(account, utility, at)
    if assignment is None:
        return None
    return (
        selectors.engine_tariff(assignment.tariff),
        selectors.account_terms(account, assignment),
    )


def tariff_in_force(
    account: Account, meter: Meter, at: datetime
) -> tuple[tariffs.Tariff, tariffs.AccountTerms] | None:
    """The account's tariff from the tariffs app, else the organisation's default tariff."""
    found = _tariffs_app_lookup(account, meter, at)
    if found is not None:
        return found
    policy = policy_row(account.organisation_id)
    document = (
        policy.default_water_tariff if meter.kind == Meter.Kind.WATER else policy.default_tariff
    )
    if not document:
        return None
    return tariffs.parse_tariff(document), tariffs.AccountTerms(move_in=account.move_in_on)


def _charge_type(meter: Meter) -> ChargeType:
    return ChargeType.WATER if meter.kind == Meter.Kind.WATER else ChargeType.ENERGY


@transaction.atomic
def meter_deduct(
    *,
    meter: Meter,
    actor: Any = ACTOR,
    intervals: Sequence[Interval] | None = None,
    lookup: TariffLookup | None = None,
) -> JournalEntry | None:
    """Rate the meter's booked intervals after the last rated one and post the deduction.

    ``intervals`` (new intervals just created) is a hint; the state's cursor decides what is
    new, so calling this twice, or with old intervals, never deducts twice.
    """
    meter = Meter.objects.get(pk=meter.pk)
    if meter.account_id is None:
        return None
    account = Account.objects.get(pk=meter.account_id)
    if (
        account.status != Account.Status.OPEN
        or account.billing_side != Account.BillingSide.PLATFORM
    ):
        return None
    state, _ = DeductionState.objects.get_or_create(
        account=account, meter=meter, defaults={"organisation_id": account.organisation_id}
    )
    state = DeductionState.objects.select_for_update().get(pk=state.pk)  # one rating at a time
    since = state.rated_until or account.opened_at
    rows = Interval.objects.filter(meter=meter, booked=True)
    if since is not None:
        rows = rows.filter(end_at__gt=since, start_at__gte=since)
    new = list(rows.order_by("end_at")[:MAX_INTERVALS_PER_RUN])
    if intervals is not None and not new:
        return None
    if not new:
        return None
    last_end = new[-1].end_at
    found = (lookup or tariff_in_force)(account, meter, last_end)
    if found is None:
        log.info("no tariff for account %s meter %s: not rated yet", account.pk, meter.pk)
        return None
    tariff, terms = found
    # The tariff engine works in local wall-clock time (TOU windows, months, holidays).
    zone = ZoneInfo(Organisation.objects.get(pk=account.organisation_id).timezone)

    def local(moment: datetime) -> datetime:
        return moment.astimezone(zone).replace(tzinfo=None)

    deduction = tariffs.incremental_charge(
        tariff=tariff,
        new_intervals=[
            tariffs.Interval(
                start=local(i.start_at), end=local(i.end_at), quantity=Decimal(i.consumption)
            )
            for i in new
        ],
        state=state.state or None,
        account=terms,
    )
    reference = f"meter-{meter.pk}/{last_end.isoformat()}"
    amount = round_money(deduction.amount, tariff.currency)
    entry: JournalEntry | None = None
    if amount > 0:
        entry = services.deduction_post(
            actor=actor,
            account=account,
            lines=[(_charge_type(meter), amount)],
            reference=reference,
            occurred_at=last_end,
            memo=f"meter {meter.address}: {len(new)} interval(s) to {last_end:%Y-%m-%d %H:%M}",
        )
    elif amount < 0:
        entry = services.deduction_credit(
            actor=actor,
            account=account,
            charge_type=_charge_type(meter),
            amount=-amount,
            reference=reference,
            occurred_at=last_end,
        )
    state.state = dict(deduction.state)
    state.rated_until = last_end
    state.save(update_fields=["state", "rated_until", "updated_at"])
    return entry


def account_deduct_pending(*, account: Account, actor: Any = ACTOR) -> list[JournalEntry]:
    """Rate every meter of the account up to its latest interval (used at move-out)."""
    posted = []
    for meter in Meter.objects.filter(account=account).order_by("pk"):
        entry = meter_deduct(meter=meter, actor=actor)
        if entry is not None:
            posted.append(entry)
    return posted


def meters_deduct(*, meter_ids: Sequence[int]) -> int:
    """Deduct for these meters now (the gateway asks right after storing their readings)."""
    count = 0
    for pk in sorted(set(meter_ids)):
        try:
            if meter_deduct(meter=Meter(pk=pk)) is not None:
                count += 1
        except Exception:  # one bad meter must not stop the others; the sweep retries it
            log.exception("deduction of meter %s failed", pk)
    return count


def deductions_run(*, now: datetime | None = None) -> int:
    """The sweep: every platform-billed meter of an open account with unrated intervals."""
    count = 0
    meters = Meter.objects.filter(
        account__status=Account.Status.OPEN,
        account__billing_side=Account.BillingSide.PLATFORM,
        removed_on__isnull=True,
    ).values_list("pk", flat=True)
    for pk in meters:
        try:
            if meter_deduct(meter=Meter(pk=pk)) is not None:
                count += 1
        except Exception:  # one bad meter must not stop the others; it is retried next run
            log.exception("deduction of meter %s failed", pk)
    return count
