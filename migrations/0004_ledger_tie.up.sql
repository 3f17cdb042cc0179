-- Whether the row's newest version won a tie: same $updatedAt and op as the version it
-- replaced, different content (decided by the content hash). Set by the recording upsert
-- from the replaced version, so recording needs no separate look-up of the previous version
-- for the rows it advances (the common case); the tie metric reads it back via RETURNING.
ALTER TABLE appwrite_sync.ledger ADD COLUMN IF NOT EXISTS tie boolean NOT NULL DEFAULT false;
