ALTER TABLE appwrite_sync.backfill_jobs DROP COLUMN IF EXISTS rows_seen;
ALTER TABLE appwrite_sync.backfill_seen SET LOGGED;
