"""PostgreSQL: the ledger's triggers under the ledger's names, on its own tables.

The triggers of wallets 0002 followed their tables through the rename, but their functions
name ``wallets_posting`` in their bodies; they are replaced here by the same checks: every
journal entry's postings sum to zero (checked at commit), and ledger rows are never updated or
deleted. Other databases rely on the service's checks.
"""

import importlib
from typing import Any

from django.db import migrations

OLD = """
DROP TRIGGER IF EXISTS wallets_entry_immutable ON ledger_journalentry;
DROP TRIGGER IF EXISTS wallets_posting_immutable ON ledger_posting;
DROP TRIGGER IF EXISTS wallets_posting_balanced ON ledger_posting;
DROP FUNCTION IF EXISTS wallets_ledger_immutable();
DROP FUNCTION IF EXISTS wallets_entry_balanced();
"""

BALANCED = """
CREATE OR REPLACE FUNCTION ledger_entry_balanced() RETURNS trigger AS $$
DECLARE
    entry bigint;
    total bigint;
BEGIN
    IF TG_OP = 'DELETE' THEN entry := OLD.entry_id; ELSE entry := NEW.entry_id; END IF;
    SELECT COALESCE(SUM(amount), 0) INTO total FROM ledger_posting WHERE entry_id = entry;
    IF total <> 0 THEN
        RAISE EXCEPTION 'journal entry % postings sum to %, not 0', entry, total
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE CONSTRAINT TRIGGER ledger_posting_balanced
    AFTER INSERT OR UPDATE OR DELETE ON ledger_posting
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_entry_balanced();

CREATE OR REPLACE FUNCTION ledger_rows_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% rows are immutable: post a reversal', TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER ledger_posting_immutable BEFORE UPDATE OR DELETE ON ledger_posting
    FOR EACH ROW EXECUTE FUNCTION ledger_rows_immutable();
CREATE TRIGGER ledger_entry_immutable BEFORE UPDATE OR DELETE ON ledger_journalentry
    FOR EACH ROW EXECUTE FUNCTION ledger_rows_immutable();
"""

UNDO = """
DROP TRIGGER IF EXISTS ledger_entry_immutable ON ledger_journalentry;
DROP TRIGGER IF EXISTS ledger_posting_immutable ON ledger_posting;
DROP FUNCTION IF EXISTS ledger_rows_immutable();
DROP TRIGGER IF EXISTS ledger_posting_balanced ON ledger_posting;
DROP FUNCTION IF EXISTS ledger_entry_balanced();
"""


def forwards(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(OLD + BALANCED, params=None)


def _wallets_triggers() -> str:
    """wallets 0002's triggers, put on the tables while they still have the ledger's names
    (0002 renames them back next; triggers follow their tables)."""
    module = importlib.import_module("meterpay.apps.wallets.migrations.0002_ledger_triggers")
    return str(module.BALANCED).replace(" ON wallets_", " ON ledger_")


def backwards(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(UNDO + _wallets_triggers(), params=None)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0002_own_table_names")]

    operations = [migrations.RunPython(forwards, backwards)]
