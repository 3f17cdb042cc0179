DROP TABLE IF EXISTS appwrite_sync.backfill_watermarks;
DROP TABLE IF EXISTS appwrite_sync.backfill_seen;
DROP TABLE IF EXISTS appwrite_sync.backfill_jobs;
