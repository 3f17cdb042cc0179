CREATE TABLE IF NOT EXISTS appwrite_sync.pending (
    sink         text        NOT NULL,
    table_key    text        NOT NULL,
    row_id       text        NOT NULL,
    seq          bigint      NOT NULL,
    enqueued_at  timestamptz NOT NULL DEFAULT now(),
    available_at timestamptz NOT NULL DEFAULT now(),
    lease_owner  text,
    attempts     integer     NOT NULL DEFAULT 0,
    last_error   text,
    dead_at      timestamptz,
    dead_seq     bigint,
    PRIMARY KEY (sink, table_key, row_id)
) WITH (fillfactor = 70);
CREATE INDEX IF NOT EXISTS pending_ready ON appwrite_sync.pending (sink, enqueued_at) WHERE dead_at IS NULL;
CREATE INDEX IF NOT EXISTS pending_dead ON appwrite_sync.pending (sink, dead_at) WHERE dead_at IS NOT NULL;
-- Unsettled positions cannot be expressed as queue rows: every row is queued again for each
-- sink that had a cursor (idempotent re-delivery), dead letters kept.
INSERT INTO appwrite_sync.pending (sink, table_key, row_id, seq)
SELECT c.sink, l.table_key, l.row_id, l.seq FROM appwrite_sync.sink_cursor c CROSS JOIN appwrite_sync.ledger l
ON CONFLICT DO NOTHING;
UPDATE appwrite_sync.pending p SET dead_at = r.dead_at, dead_seq = r.seq, last_error = r.last_error, attempts = r.attempts
FROM appwrite_sync.sink_retry r
WHERE r.dead_at IS NOT NULL AND p.sink = r.sink AND p.table_key = r.table_key AND p.row_id = r.row_id;
DROP TABLE IF EXISTS appwrite_sync.sink_retry;
DROP TABLE IF EXISTS appwrite_sync.sink_cursor;
DROP INDEX IF EXISTS appwrite_sync.ledger_log;
ALTER TABLE appwrite_sync.ledger DROP COLUMN IF EXISTS tx;
ALTER TABLE appwrite_sync.ledger ALTER COLUMN row TYPE jsonb USING row::jsonb;
