-- Back to json in row for every row (this rewrites the rows recorded since the upgrade).
UPDATE appwrite_sync.ledger SET row = source::json, source = NULL WHERE source IS NOT NULL;
ALTER TABLE appwrite_sync.ledger DROP CONSTRAINT IF EXISTS ledger_source_present;
ALTER TABLE appwrite_sync.ledger ALTER COLUMN row SET NOT NULL;
ALTER TABLE appwrite_sync.ledger DROP COLUMN IF EXISTS source;
