"""PostgreSQL: every journal entry's postings sum to zero (checked at commit), and ledger rows
are never updated or deleted. Other databases rely on the service's checks."""

from typing import Any

from django.db import migrations

BALANCED = """
CREATE OR REPLACE FUNCTION wallets_entry_balanced() RETURNS trigger AS $$
DECLARE
    entry bigint;
    total bigint;
BEGIN
    IF TG_OP = 'DELETE' THEN entry := OLD.entry_id; ELSE entry := NEW.entry_id; END IF;
    SELECT COALESCE(SUM(amount), 0) INTO total FROM wallets_posting WHERE entry_id = entry;
    IF total <> 0 THEN
        RAISE EXCEPTION 'journal entry % postings sum to %, not 0', entry, total
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE CONSTRAINT TRIGGER wallets_posting_balanced
    AFTER INSERT OR UPDATE OR DELETE ON wallets_posting
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION wallets_entry_balanced();

CREATE OR REPLACE FUNCTION wallets_ledger_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% rows are immutable: post a reversal', TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER wallets_posting_immutable BEFORE UPDATE OR DELETE ON wallets_posting
    FOR EACH ROW EXECUTE FUNCTION wallets_ledger_immutable();
CREATE TRIGGER wallets_entry_immutable BEFORE UPDATE OR DELETE ON wallets_journalentry
    FOR EACH ROW EXECUTE FUNCTION wallets_ledger_immutable();
"""

UNDO = """
DROP TRIGGER IF EXISTS wallets_entry_immutable ON wallets_journalentry;
DROP TRIGGER IF EXISTS wallets_posting_immutable ON wallets_posting;
DROP FUNCTION IF EXISTS wallets_ledger_immutable();
DROP TRIGGER IF EXISTS wallets_posting_balanced ON wallets_posting;
DROP FUNCTION IF EXISTS wallets_entry_balanced();
"""


def forwards(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BALANCED, params=None)


def backwards(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(UNDO, params=None)


class Migration(migrations.Migration):
    dependencies = [("wallets", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards)]
