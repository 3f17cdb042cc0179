-- Delivery as a log with per-sink cursors (replaces the per-row pending queue of 0001).
--
-- Every ledger write stamps the row with its transaction id (tx) and a fresh seq, so the
-- ledger read in (tx, seq) order is a log of "rows whose newest version changed", one entry
-- per row: many updates to one row collapse into one entry by construction. A sink's
-- cursor is the (tx, seq) up to which every entry is settled. Readers only take entries whose
-- transaction is older than every transaction still running (pg_snapshot_xmin), so an entry
-- can never appear behind a cursor after the cursor moved past its position.
--
-- Recording a change is now one upsert (no per-sink queue rows), and settling a batch moves a
-- cursor instead of deleting one queue row per item.
ALTER TABLE appwrite_sync.ledger ADD COLUMN IF NOT EXISTS tx xid8 NOT NULL DEFAULT '0';
-- The source row is kept as json (text checked for syntax), not jsonb: every change is
-- written once and read back as text by each sink, and jsonb's parse on write and re-render on
-- read were the largest part of both. ->> and friends work the same on json.
ALTER TABLE appwrite_sync.ledger ALTER COLUMN row TYPE json USING row::json;
ALTER TABLE appwrite_sync.ledger ALTER COLUMN tx SET DEFAULT pg_current_xact_id();
CREATE INDEX IF NOT EXISTS ledger_log ON appwrite_sync.ledger (tx, seq);

-- One row per sink: the settled position and the delivery lease (one replica delivers a sink
-- at a time; another takes over when the lease lapses).
CREATE TABLE IF NOT EXISTS appwrite_sync.sink_cursor (
    sink        text        PRIMARY KEY,
    tx          xid8        NOT NULL DEFAULT '0',
    seq         bigint      NOT NULL DEFAULT 0,
    owner       text,
    lease_until timestamptz NOT NULL DEFAULT '-infinity',
    moved_at    timestamptz NOT NULL DEFAULT now()
);

-- Rows a sink must take again outside the log: failed with a retryable error (after backoff),
-- dead-lettered (dead_at set), deferred because an older version was still in flight, or
-- queued by a mapping change. The row's current ledger version is what gets sent.
CREATE TABLE IF NOT EXISTS appwrite_sync.sink_retry (
    sink         text        NOT NULL,
    table_key    text        NOT NULL,
    row_id       text        NOT NULL,
    seq          bigint      NOT NULL,              -- the ledger version that failed or waits
    attempts     integer     NOT NULL DEFAULT 0,
    last_error   text,
    available_at timestamptz NOT NULL DEFAULT now(),
    dead_at      timestamptz,
    enqueued_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (sink, table_key, row_id)
);
CREATE INDEX IF NOT EXISTS sink_retry_due ON appwrite_sync.sink_retry (sink, available_at) WHERE dead_at IS NULL;
CREATE INDEX IF NOT EXISTS sink_retry_dead ON appwrite_sync.sink_retry (sink, dead_at) WHERE dead_at IS NOT NULL;

-- Keep dead letters across the upgrade. Every other ledger row is re-delivered once (its tx is
-- 0, before every new cursor): applying is idempotent.
INSERT INTO appwrite_sync.sink_retry (sink, table_key, row_id, seq, attempts, last_error, dead_at)
SELECT sink, table_key, row_id, COALESCE(dead_seq, seq), attempts, last_error, dead_at
FROM appwrite_sync.pending WHERE dead_at IS NOT NULL
ON CONFLICT DO NOTHING;
DROP TABLE IF EXISTS appwrite_sync.pending;
