-- A full job refuses to record deletes for most of a table's rows (an API key that cannot see
-- the rows reads none, and every row would look gone) unless it was started with this flag.
ALTER TABLE appwrite_sync.backfill_jobs ADD COLUMN IF NOT EXISTS allow_mass_delete boolean NOT NULL DEFAULT false;
