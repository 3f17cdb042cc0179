-- backfill_seen holds, for a running full job, the ids of the rows its scan saw but did not
-- advance: a repeated backfill of unchanged rows writes one per row, and as a logged table
-- each cost about 300 bytes of WAL (issue #20). Unlogged, they cost none. A crash of the
-- state store empties an unlogged table (and a standby never holds its rows), so rows_seen
-- counts the ids a job stored: a job that finds fewer before its deletes phase scans again
-- instead of taking the rows it saw for gone. Jobs empty the table as they end, so the
-- rewrite SET UNLOGGED makes is small; the new column has a constant default (no rewrite).
ALTER TABLE appwrite_sync.backfill_seen SET UNLOGGED;
ALTER TABLE appwrite_sync.backfill_jobs ADD COLUMN IF NOT EXISTS rows_seen bigint NOT NULL DEFAULT 0;
