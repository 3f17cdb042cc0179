ALTER TABLE appwrite_sync.ledger DROP COLUMN IF EXISTS tie;
