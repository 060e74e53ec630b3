"""Who may do what: the one role table (docs/roles.md renders the same table).

Staff users belong to one organisation and hold one role. Tenant users see only their
own customer's accounts in the portal and hold no console permission.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    OWNER = "owner"
    OPERATOR = "operator"
    FINANCE = "finance"
    VIEWER = "viewer"
    TENANT = "tenant"


class Permission(StrEnum):
    VIEW = "view"  # read everything of the organisation in the console and API
    MANAGE_SITES = "manage_sites"  # sites, buildings, floors, rooms
    MANAGE_CUSTOMERS = "manage_customers"  # customer archives
    MANAGE_ACCOUNTS = "manage_accounts"  # open, suspend, close accounts; move in and out
    MANAGE_METERS = "manage_meters"  # meters and gateways, replacement
    MANAGE_TARIFFS = "manage_tariffs"  # tariff documents, price changes, account tariffs
    IMPORT_DATA = "import_data"  # bulk import of rooms, customers, meters
    VIEW_FINANCE = "view_finance"  # orders, income, reconciliation, ledger history
    RECORD_PAYMENTS = "record_payments"  # counter cash, bank transfers, refunds, reversals
    MANAGE_USERS = "manage_users"  # staff users and their roles
    MANAGE_OWN_TOKENS = "manage_own_tokens"  # API tokens of one's own
    VIEW_AUDIT = "view_audit"  # the audit log
    MANAGE_PAYMENT_PROVIDERS = "manage_payment_providers"  # online payment credentials
    MANAGE_BALANCE_POLICY = "manage_balance_policy"  # alarms, cut-off, overrides per account
    MANAGE_NOTIFICATIONS = "manage_notifications"  # notification channels, test messages
    MANAGE_CHARGES = "manage_charges"  # charge items, public-area and line-loss groups, schedules
    ENTER_GRID_READINGS = "enter_grid_readings"  # the supply company's meter, read by hand
    RUN_BILLS = "run_bills"  # make and remake draft bill runs
    ISSUE_BILLS = "issue_bills"  # confirm and issue runs, credit notes and corrected bills
    MANAGE_BILL_TEMPLATES = "manage_bill_templates"  # print templates, logo and seal


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.OWNER: frozenset(Permission),
    Role.OPERATOR: frozenset(
        {
            Permission.VIEW,
            Permission.MANAGE_SITES,
            Permission.MANAGE_CUSTOMERS,
            Permission.MANAGE_ACCOUNTS,
            Permission.MANAGE_METERS,
            Permission.IMPORT_DATA,
            Permission.MANAGE_OWN_TOKENS,
            Permission.MANAGE_NOTIFICATIONS,
            Permission.ENTER_GRID_READINGS,
            Permission.RUN_BILLS,
        }
    ),
    Role.FINANCE: frozenset(
        {
            Permission.VIEW,
            Permission.VIEW_FINANCE,
            Permission.MANAGE_TARIFFS,
            Permission.RECORD_PAYMENTS,
            Permission.MANAGE_OWN_TOKENS,
            Permission.VIEW_AUDIT,
            Permission.MANAGE_BALANCE_POLICY,
            Permission.MANAGE_CHARGES,
            Permission.ENTER_GRID_READINGS,
            Permission.RUN_BILLS,
            Permission.ISSUE_BILLS,
            Permission.MANAGE_BILL_TEMPLATES,
        }
    ),
    Role.VIEWER: frozenset({Permission.VIEW}),
    Role.TENANT: frozenset(),
}

STAFF_ROLES: tuple[Role, ...] = (Role.OWNER, Role.OPERATOR, Role.FINANCE, Role.VIEWER)


def role_allows(role: Role | str, permission: Permission | str) -> bool:
    """True when ``role`` grants ``permission``; unknown roles grant nothing."""
    try:
        return Permission(permission) in ROLE_PERMISSIONS[Role(role)]
    except ValueError:
        return False


def role_table_markdown() -> str:
    """The role table as Markdown, so docs and code cannot drift apart (a test compares)."""
    roles = STAFF_ROLES
    header = "| permission | " + " | ".join(r.value for r in roles) + " |"
    rule = "|---|" + "---|" * len(roles)
    rows = [
        f"| {p.value} | "
        + " | ".join("yes" if p in ROLE_PERMISSIONS[r] else "no" for r in roles)
        + " |"
        for p in Permission
    ]
    return "\n".join([header, rule, *rows])
