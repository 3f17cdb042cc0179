-- The source row is now stored as text (source), no longer as json (row). The json type
-- parses every row on the way in only to check its syntax, and the recorder has checked it
-- already (ContentHash accepts exactly one valid JSON object in valid UTF-8): that parse was
-- about a fifteenth of Postgres' work per recorded change. The readers take
-- COALESCE(source, row::text), so rows recorded before this migration keep their json and
-- are never rewritten: changing the column's type would rewrite the whole ledger under an
-- exclusive lock, refusing webhooks for as long as that takes. A row's next version moves it
-- to source.
ALTER TABLE appwrite_sync.ledger ADD COLUMN IF NOT EXISTS source text;
ALTER TABLE appwrite_sync.ledger ALTER COLUMN row DROP NOT NULL;
-- NOT VALID: checked for every row written from now on, without reading the existing ones
-- (which all have row).
ALTER TABLE appwrite_sync.ledger DROP CONSTRAINT IF EXISTS ledger_source_present;
ALTER TABLE appwrite_sync.ledger ADD CONSTRAINT ledger_source_present CHECK (source IS NOT NULL OR row IS NOT NULL) NOT VALID;
