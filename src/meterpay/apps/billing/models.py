"""Billing: the rating state of each account's meter, and the month end.

The month end: charge items (rent, property fee…) and the accounts they apply to, public-area
allocation groups, line-loss groups with their grid readings, bill runs and the bills they make
(with their lines), print templates, and schedules of bill runs. Money is integer minor units;
unit prices are integer millionths of the currency unit (``*_micro``), see docs/billing.md.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from meterpay.apps.organisations.models import OrgOwned


class DeductionState(OrgOwned):
    """The rating accumulator of one account's meter, persisted between deductions."""

    account = models.ForeignKey("customers.Account", on_delete=models.PROTECT, related_name="+")
    meter = models.ForeignKey("meters.Meter", on_delete=models.PROTECT, related_name="+")
    state = models.JSONField(_("state"), default=dict, blank=True)
    rated_until = models.DateTimeField(_("rated until"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("deduction state")
        verbose_name_plural = _("deduction states")
        constraints = [
            models.UniqueConstraint(fields=["account", "meter"], name="deduction_state_once")
        ]


class Utility(models.TextChoices):
    ELECTRICITY = "electricity", _("Electricity")
    WATER = "water", _("Water")


class Settlement(models.TextChoices):
    """How a charge reaches the customer."""

    DEDUCT = "deduct", _("Deducted from the wallet")
    BILL = "bill", _("Payment request (bill)")


class AllocationRule(models.TextChoices):
    RATIO = "ratio", _("By ratio")
    AREA = "area", _("By room area")
    USAGE = "usage", _("By usage")
    EQUAL = "equal", _("Equally")


class ChargeItem(OrgOwned):
    """A charge the manager names (rent, property fee, service fee…) and how it is priced."""

    class Basis(models.TextChoices):
        FIXED = "fixed", _("Fixed amount per cycle")
        PER_AREA = "per_area", _("Per m² of the account's rooms per cycle")
        PER_UNIT = "per_unit", _("Per kWh or m³ of the account's meters")

    class Frequency(models.TextChoices):
        MONTHLY = "monthly", _("Monthly")
        QUARTERLY = "quarterly", _("Quarterly")
        YEARLY = "yearly", _("Yearly")
        ONE_TIME = "one_time", _("One-time")

    class Revenue(models.TextChoices):
        """The revenue account of the ledger the charge is booked to."""

        RENT = "rent", _("Rent")
        PROPERTY_FEE = "property_fee", _("Property fee")
        SERVICE_FEE = "service_fee", _("Service fee")
        OTHER = "other_charges", _("Other charges")

    code = models.SlugField(_("code"), max_length=40)
    name = models.CharField(_("name"), max_length=100)
    basis = models.CharField(_("basis"), max_length=10, choices=Basis.choices)
    unit_price_micro = models.BigIntegerField(
        _("unit price (millionths)"),
        help_text=_("Per cycle for a fixed amount, per m² per cycle, or per kWh / m³."),
    )
    frequency = models.CharField(
        _("frequency"), max_length=10, choices=Frequency.choices, default=Frequency.MONTHLY
    )
    day_of_month = models.PositiveSmallIntegerField(
        _("cycle starts on day"),
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(28)],
    )
    utility = models.CharField(
        _("metered utility"),
        max_length=12,
        choices=Utility.choices,
        blank=True,
        help_text=_("For a charge per unit: which meters' consumption it is charged on."),
    )
    settlement = models.CharField(
        _("settlement"), max_length=8, choices=Settlement.choices, default=Settlement.BILL
    )
    revenue = models.CharField(
        _("revenue account"), max_length=16, choices=Revenue.choices, default=Revenue.OTHER
    )
    prorate = models.BooleanField(_("prorate at move-in and move-out"), default=True)
    valid_from = models.DateField(_("valid from"), null=True, blank=True)
    valid_to = models.DateField(_("valid to"), null=True, blank=True)
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("charge item")
        verbose_name_plural = _("charge items")
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "code"], name="charge_item_code"),
            models.CheckConstraint(
                condition=models.Q(unit_price_micro__gte=0), name="charge_item_price_not_negative"
            ),
            models.CheckConstraint(
                condition=~models.Q(basis="per_unit") | ~models.Q(utility=""),
                name="charge_per_unit_names_utility",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class ChargeSubscription(OrgOwned):
    """A charge item applied to an account, optionally for a span and at its own price."""

    item = models.ForeignKey(
        ChargeItem, on_delete=models.PROTECT, related_name="subscriptions", verbose_name=_("item")
    )
    account = models.ForeignKey(
        "customers.Account",
        on_delete=models.PROTECT,
        related_name="charge_subscriptions",
        verbose_name=_("account"),
    )
    start_on = models.DateField(_("from"), null=True, blank=True)
    end_on = models.DateField(_("to (inclusive)"), null=True, blank=True)
    unit_price_micro = models.BigIntegerField(
        _("own unit price (millionths)"), null=True, blank=True
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("charge subscription")
        verbose_name_plural = _("charge subscriptions")
        ordering = ["account", "item"]
        constraints = [
            models.UniqueConstraint(fields=["item", "account"], name="charge_subscription_once")
        ]


class AllocationGroup(OrgOwned):
    """A public-area (master) meter whose rated consumption its members share (公摊)."""

    name = models.CharField(_("name"), max_length=100)
    site = models.ForeignKey(
        "sites.Site", on_delete=models.PROTECT, related_name="+", verbose_name=_("site")
    )
    master_meter = models.ForeignKey(
        "meters.Meter",
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("public-area meter"),
    )
    rule = models.CharField(
        _("rule"), max_length=6, choices=AllocationRule.choices, default=AllocationRule.AREA
    )
    tariff = models.ForeignKey(
        "tariffs.Tariff",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("tariff"),
        help_text=_("Rates the public-area meter; empty: the organisation's default tariff."),
    )
    settlement = models.CharField(
        _("settlement"), max_length=8, choices=Settlement.choices, default=Settlement.BILL
    )
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("public-area allocation")
        verbose_name_plural = _("public-area allocations")
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class AllocationMember(OrgOwned):
    """An account sharing a public-area meter; ``ratio`` is its weight under the ratio rule."""

    group = models.ForeignKey(
        AllocationGroup, on_delete=models.CASCADE, related_name="members", verbose_name=_("group")
    )
    account = models.ForeignKey(
        "customers.Account", on_delete=models.PROTECT, related_name="+", verbose_name=_("account")
    )
    ratio = models.DecimalField(_("ratio"), max_digits=12, decimal_places=4, null=True, blank=True)

    class Meta:
        verbose_name = _("allocation member")
        verbose_name_plural = _("allocation members")
        ordering = ["group", "account"]
        constraints = [
            models.UniqueConstraint(fields=["group", "account"], name="allocation_member_once")
        ]


class LossGroup(OrgOwned):
    """The supply company's (grid) meter of a site and the meters under it (线损).

    Its consumption comes from readings entered by hand; the loss is grid - Σ the meters under
    it (tenants' and public-area meters), shared among the accounts of those meters.
    """

    name = models.CharField(_("name"), max_length=100)
    site = models.ForeignKey(
        "sites.Site", on_delete=models.PROTECT, related_name="+", verbose_name=_("site")
    )
    utility = models.CharField(
        _("utility"), max_length=12, choices=Utility.choices, default=Utility.ELECTRICITY
    )
    grid_meter_number = models.CharField(_("grid meter number"), max_length=40, blank=True)
    multiplier = models.PositiveIntegerField(
        _("CT ratio / multiplier"), default=1, validators=[MinValueValidator(1)]
    )
    meters = models.ManyToManyField(
        "meters.Meter",
        blank=True,
        related_name="+",
        verbose_name=_("meters under the grid meter"),
        help_text=_("Empty: every meter of the utility at the site."),
    )
    rule = models.CharField(
        _("rule"), max_length=6, choices=AllocationRule.choices, default=AllocationRule.USAGE
    )
    unit_price_micro = models.BigIntegerField(
        _("price of lost energy (millionths per unit)"), validators=[MinValueValidator(0)]
    )
    settlement = models.CharField(
        _("settlement"), max_length=8, choices=Settlement.choices, default=Settlement.BILL
    )
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("line-loss group")
        verbose_name_plural = _("line-loss groups")
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class GridReading(OrgOwned):
    """The grid meter's register at the start of ``read_on`` (a period boundary), by hand."""

    group = models.ForeignKey(
        LossGroup, on_delete=models.PROTECT, related_name="readings", verbose_name=_("group")
    )
    read_on = models.DateField(_("read on (start of the day)"))
    reading = models.DecimalField(_("register"), max_digits=16, decimal_places=4)
    notes = models.TextField(_("notes"), blank=True)
    photo = models.BinaryField(_("photo"), null=True, blank=True)
    photo_type = models.CharField(_("photo type"), max_length=40, blank=True)
    entered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("entered by"),
    )
    entered_at = models.DateTimeField(_("entered at"), auto_now_add=True)

    class Meta:
        verbose_name = _("grid reading")
        verbose_name_plural = _("grid readings")
        ordering = ["group", "-read_on"]
        constraints = [
            models.UniqueConstraint(fields=["group", "read_on"], name="grid_reading_once_a_day"),
            models.CheckConstraint(
                condition=models.Q(reading__gte=0), name="grid_reading_not_negative"
            ),
        ]


class BillTemplate(OrgOwned):
    """A print template the manager edits (the safe template language of docs/billing.md)."""

    name = models.CharField(_("name"), max_length=100)
    language = models.CharField(_("language"), max_length=8, choices=settings.LANGUAGES)
    body = models.TextField(_("template (HTML)"))
    is_default = models.BooleanField(_("default for its language"), default=False)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("bill template")
        verbose_name_plural = _("bill templates")
        ordering = ["language", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "language"],
                condition=models.Q(is_default=True),
                name="one_default_bill_template_per_language",
            )
        ]

    def __str__(self) -> str:
        return self.name


class BillBranding(OrgOwned):
    """What every printed bill of an organisation carries: address, bank, logo and seal."""

    address = models.CharField(_("address"), max_length=200, blank=True)
    phone = models.CharField(_("phone"), max_length=40, blank=True)
    bank_account = models.CharField(_("bank account"), max_length=120, blank=True)
    payment_instructions = models.TextField(_("payment instructions"), blank=True)
    logo = models.BinaryField(_("logo"), null=True, blank=True)
    logo_type = models.CharField(_("logo type"), max_length=40, blank=True)
    seal = models.BinaryField(_("seal"), null=True, blank=True)
    seal_type = models.CharField(_("seal type"), max_length=40, blank=True)

    class Meta:
        verbose_name = _("bill branding")
        verbose_name_plural = _("bill branding")
        constraints = [models.UniqueConstraint(fields=["organisation"], name="one_bill_branding")]


class BillSchedule(OrgOwned):
    """A site's monthly bill run, made on a day of the month for the month before."""

    site = models.ForeignKey(
        "sites.Site", on_delete=models.PROTECT, related_name="+", verbose_name=_("site")
    )
    day_of_month = models.PositiveSmallIntegerField(
        _("run on day"), default=1, validators=[MinValueValidator(1), MaxValueValidator(28)]
    )
    issue = models.BooleanField(
        _("confirm and issue at once"),
        default=False,
        help_text=_("Otherwise the run waits as a draft for finance to check."),
    )
    active = models.BooleanField(_("active"), default=True)
    last_period_start = models.DateField(_("last run for the month of"), null=True, blank=True)

    class Meta:
        verbose_name = _("bill schedule")
        verbose_name_plural = _("bill schedules")
        constraints = [models.UniqueConstraint(fields=["site"], name="one_bill_schedule_per_site")]


class BillRun(OrgOwned):
    """The bills of a period for a site or a selection of accounts: draft → confirmed → issued."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        CONFIRMED = "confirmed", _("Checked and confirmed")
        ISSUED = "issued", _("Issued")
        VOID = "void", _("Discarded")

    number = models.CharField(_("number"), max_length=30)
    site = models.ForeignKey(
        "sites.Site",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("site"),
    )
    accounts = models.ManyToManyField(
        "customers.Account",
        blank=True,
        related_name="+",
        verbose_name=_("selected accounts"),
        help_text=_("Empty: every account of the site."),
    )
    period_start = models.DateField(_("from"))
    period_end = models.DateField(_("to (exclusive)"))
    due_on = models.DateField(_("due on"))
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.DRAFT
    )
    #: Allocation and line-loss results and warnings of the run (what the checker reads).
    findings = models.JSONField(_("findings"), default=dict, blank=True)
    schedule = models.ForeignKey(
        BillSchedule, on_delete=models.SET_NULL, null=True, blank=True, related_name="runs"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    confirmed_at = models.DateTimeField(_("confirmed at"), null=True, blank=True)
    issued_at = models.DateTimeField(_("issued at"), null=True, blank=True)

    class Meta:
        verbose_name = _("bill run")
        verbose_name_plural = _("bill runs")
        ordering = ["-period_start", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "number"], name="bill_run_number"),
            models.CheckConstraint(
                condition=models.Q(period_end__gt=models.F("period_start")),
                name="bill_run_period_not_empty",
            ),
        ]

    def __str__(self) -> str:
        return self.number


class Bill(OrgOwned):
    """A bill of an account for a period: its lines, and what it asks to be paid.

    Lifecycle (``meterpay.core.billing.lifecycle``): draft → confirmed → issued → paid; an
    issued bill is never edited: a credit note cancels it and a corrected bill replaces it.
    ``settles`` names where what it asks for is owed: the wallet (postpaid accounts) or the
    account's receivable (payment requests of prepaid accounts).
    """

    class Kind(models.TextChoices):
        STATEMENT = "statement", _("Monthly bill")
        REQUEST = "request", _("Payment request")
        FINAL = "final", _("Final bill")
        CREDIT_NOTE = "credit_note", _("Credit note")

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        CONFIRMED = "confirmed", _("Confirmed")
        ISSUED = "issued", _("Issued")
        PAID = "paid", _("Paid")
        CREDITED = "credited", _("Credited")
        VOID = "void", _("Discarded")

    class Settles(models.TextChoices):
        WALLET = "wallet", _("Wallet")
        RECEIVABLE = "receivable", _("Receivable")

    number = models.CharField(_("number"), max_length=30)
    run = models.ForeignKey(
        BillRun,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="bills",
        verbose_name=_("bill run"),
    )
    account = models.ForeignKey("customers.Account", on_delete=models.PROTECT, related_name="bills")
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices, default=Kind.STATEMENT)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices)
    settles = models.CharField(
        _("owed to"), max_length=10, choices=Settles.choices, default=Settles.WALLET
    )
    period_start = models.DateField(_("from"), null=True, blank=True)
    period_end = models.DateField(_("period end"))
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    #: Σ of the lines.
    total_minor = models.BigIntegerField(_("total (minor units)"))
    #: What the bill asks to be paid (its lines not paid from the prepaid wallet already).
    due_minor = models.BigIntegerField(_("amount due (minor units)"), default=0)
    #: What of ``due_minor`` is still unpaid (kept by the payment allocation rule).
    unpaid_minor = models.BigIntegerField(_("unpaid (minor units)"), default=0)
    due_on = models.DateField(_("due on"))
    issued_at = models.DateTimeField(_("issued at"), null=True, blank=True)
    confirmed_at = models.DateTimeField(_("confirmed at"), null=True, blank=True)
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)
    overdue_since = models.DateField(_("overdue since"), null=True, blank=True)
    reminders_sent = models.PositiveSmallIntegerField(_("reminders sent"), default=0)
    last_reminder_on = models.DateField(_("last reminder on"), null=True, blank=True)
    replaces = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="replaced_by",
        verbose_name=_("replaces"),
    )
    credits = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="credit_notes",
        verbose_name=_("credit note for"),
    )
    entry = models.ForeignKey(
        "ledger.JournalEntry",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("journal entry"),
    )
    #: Previous period's total, change and flags (``meterpay.core.billing.review``).
    review = models.JSONField(_("review"), default=dict, blank=True)
    #: Per meter: address, kind, first and last register, multiplier, consumption.
    readings = models.JSONField(_("meter readings"), default=list, blank=True)
    notes = models.TextField(_("notes"), blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("bill")
        verbose_name_plural = _("bills")
        ordering = ["-period_end", "-id"]
        indexes = [
            models.Index(fields=["account", "status"]),
            models.Index(fields=["organisation", "status", "due_on"]),
        ]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "number"], name="bill_number"),
            models.UniqueConstraint(
                fields=["run", "account", "kind"],
                condition=models.Q(status__in=["draft", "confirmed", "issued", "paid"]),
                name="one_live_bill_per_run_and_account",
            ),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def amount_minor(self) -> int:
        """What the bill asks for (the name of the first postpaid statements)."""
        return self.due_minor


class BillLine(models.Model):
    """One line of a bill. ``posted``: booked by the bill's own entry at issue; otherwise it
    was booked before (real-time deductions) and the bill only shows it."""

    class Section(models.TextChoices):
        ENERGY = "energy", _("Electricity")
        BASIC = "basic", _("Basic charge")
        POWER_FACTOR = "power_factor", _("Power-factor adjustment")
        WATER = "water", _("Water and sewage")
        CHARGES = "charges", _("Rent and fees")
        PUBLIC_SHARE = "public_share", _("Public-area share")
        LINE_LOSS = "line_loss", _("Line loss")
        ADJUSTMENT = "adjustment", _("Adjustments")
        BALANCE = "balance", _("Balance")

    bill = models.ForeignKey(Bill, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveIntegerField(_("position"))
    section = models.CharField(_("section"), max_length=14, choices=Section.choices)
    label = models.CharField(_("label"), max_length=200)
    quantity = models.DecimalField(
        _("quantity"), max_digits=18, decimal_places=4, null=True, blank=True
    )
    unit = models.CharField(_("unit"), max_length=12, blank=True)
    unit_price_micro = models.BigIntegerField(_("unit price (millionths)"), null=True, blank=True)
    amount_minor = models.BigIntegerField(_("amount (minor units)"))
    #: The ledger's charge type (revenue account) of the amount.
    charge_type = models.CharField(_("charge type"), max_length=16)
    #: Where the amount is owed: "wallet" (deducted / postpaid) or "receivable" (requested).
    settles = models.CharField(_("owed to"), max_length=10)
    posted = models.BooleanField(_("booked by the bill"), default=True)
    meter = models.ForeignKey(
        "meters.Meter", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    #: Idempotency part of a charge (item and cycle), an allocation's figures, etc.
    detail = models.JSONField(_("detail"), default=dict, blank=True)

    class Meta:
        verbose_name = _("bill line")
        verbose_name_plural = _("bill lines")
        ordering = ["bill", "position"]

    def __str__(self) -> str:
        return f"{self.label}: {self.amount_minor}"
