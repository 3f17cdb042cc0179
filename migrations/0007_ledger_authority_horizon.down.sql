DROP TABLE IF EXISTS appwrite_sync.ledger_horizon;
ALTER TABLE appwrite_sync.ledger DROP COLUMN IF EXISTS authoritative;
