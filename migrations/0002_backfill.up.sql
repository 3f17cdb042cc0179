-- Backfill and reconciliation jobs (package backfill): the jobs, the rows a full scan has seen
-- (for delete detection without holding every id in memory), and per-table watermarks of the
-- incremental reconcile.

-- One row per job. A job is claimable when state is queued or running and available_at has
-- passed: for a queued job available_at is when it may start (a retry waits), for a running
-- one it is the owner's lease, renewed by its heartbeat, so the job of a process that died is
-- taken over once the lease lapses.
CREATE TABLE IF NOT EXISTS appwrite_sync.backfill_jobs (
    id              text        PRIMARY KEY,
    table_key       text        NOT NULL,               -- "database/table"
    mode            text        NOT NULL CHECK (mode IN ('full', 'incremental')),
    state           text        NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'canceled')),
    trigger         text        NOT NULL DEFAULT 'admin', -- admin, schedule, probe
    phase           text        NOT NULL DEFAULT 'scan',  -- scan, deletes (full only), done
    created_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,                        -- first claim
    finished_at     timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    available_at    timestamptz NOT NULL DEFAULT now(),
    lease_owner     text,
    -- When the scan first began (state store clock, like ledger.recorded_at): rows the ledger
    -- recorded or changed after it are never deleted by this job. Kept across resumes.
    scan_started_at timestamptz,
    -- Incremental: rows with $updatedAt >= since (the table's watermark minus the skew window
    -- when the job was queued); NULL scans every row.
    since           timestamptz,
    checkpoint      text,                               -- last $sequence recorded: resume after it
    max_updated_at  timestamptz,                        -- greatest $updatedAt recorded so far
    total           bigint,                             -- rows to read, when Appwrite counted them exactly
    rows_read       bigint      NOT NULL DEFAULT 0,
    rows_changed    bigint      NOT NULL DEFAULT 0,
    rows_deleted    bigint      NOT NULL DEFAULT 0,
    run_started_at  timestamptz,                        -- start of the current (or last) run: rate
    run_rows_base   bigint      NOT NULL DEFAULT 0,     -- rows_read when that run started
    failures        integer     NOT NULL DEFAULT 0,
    error           text
);
-- One job per table at a time, enforced by the store so concurrent requests and replicas
-- cannot both start one.
CREATE UNIQUE INDEX IF NOT EXISTS backfill_jobs_one_active ON appwrite_sync.backfill_jobs (table_key)
    WHERE state IN ('queued', 'running');
CREATE INDEX IF NOT EXISTS backfill_jobs_claim ON appwrite_sync.backfill_jobs (available_at)
    WHERE state IN ('queued', 'running');
CREATE INDEX IF NOT EXISTS backfill_jobs_recent ON appwrite_sync.backfill_jobs (table_key, mode, created_at);

-- Row ids a full job has read without advancing them in the ledger (stale or duplicate), so
-- the end of the scan can find ledger rows the source no longer has; rows it advanced carry a
-- recorded_at after the scan began instead. Removed when the job ends.
CREATE TABLE IF NOT EXISTS appwrite_sync.backfill_seen (
    job_id text NOT NULL,
    row_id text NOT NULL,
    PRIMARY KEY (job_id, row_id)
);

-- Per table, the $updatedAt up to which an incremental reconcile needs not look again (minus
-- the skew window). Advanced only by jobs that succeeded, only over rows they recorded.
CREATE TABLE IF NOT EXISTS appwrite_sync.backfill_watermarks (
    table_key  text        PRIMARY KEY,
    updated_at timestamptz NOT NULL,
    job_id     text        NOT NULL,
    set_at     timestamptz NOT NULL DEFAULT now()
);
