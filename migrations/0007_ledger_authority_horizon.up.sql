-- Versions read from Appwrite's REST API (backfill, reconcile) are authoritative for their
-- $updatedAt: such a version replaces a different content recorded at the same $updatedAt and
-- op, and a webhook version at that $updatedAt and op no longer replaces it. A constant
-- default: no rewrite, instant. See the ledger package documentation.
ALTER TABLE appwrite_sync.ledger ADD COLUMN IF NOT EXISTS authoritative boolean NOT NULL DEFAULT false;

-- The tombstone horizon: per table, the newest $updatedAt of the delete tombstones past their
-- retention. The sweep raises it, and removes the tombstones it covers one sweep later. A
-- webhook upsert of a row the ledger does not hold, at or before it, may be the replay of a
-- removed row and is refused as stale. One row per table: the ledger still forgets its swept
-- tombstones.
CREATE TABLE IF NOT EXISTS appwrite_sync.ledger_horizon (
    table_key  text        PRIMARY KEY,
    updated_at timestamptz NOT NULL,
    raised_at  timestamptz NOT NULL DEFAULT now()   -- when updated_at last rose
);
