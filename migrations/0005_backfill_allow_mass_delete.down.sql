ALTER TABLE appwrite_sync.backfill_jobs DROP COLUMN IF EXISTS allow_mass_delete;
