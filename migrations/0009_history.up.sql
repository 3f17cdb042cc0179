-- Row history (postgres.history): every distinct version of a row of a table with history on,
-- kept in the same transaction as the ledger's newest-version row, so a version is durable
-- before its webhook is answered. The ledger keeps only the newest version of a row; this
-- table keeps each version once (the primary key is the version: a duplicate or a replay
-- writes nothing), late and stale ones included. See the ledger package documentation.
CREATE SEQUENCE IF NOT EXISTS appwrite_sync.history_seq;

CREATE TABLE IF NOT EXISTS appwrite_sync.history (
    table_key   text        NOT NULL,               -- "database/table"
    row_id      text        NOT NULL,               -- Appwrite $id
    updated_at  timestamptz NOT NULL,               -- $updatedAt of the version
    op          smallint    NOT NULL,               -- 1 upsert, 2 delete
    hash        bytea       NOT NULL,               -- content hash of the version's row
    -- the delivery log, as the ledger's (migration 3): (writing transaction, seq)
    tx          xid8        NOT NULL DEFAULT pg_current_xact_id(),
    seq         bigint      NOT NULL DEFAULT nextval('appwrite_sync.history_seq'),
    actor       text,                               -- X-Appwrite-Webhook-User-Id; NULL when empty
    event       text,                               -- first event of the delivery; NULL when read from the API
    source      text        NOT NULL,               -- webhook, backfill, reconcile, replay
    recorded_at timestamptz NOT NULL DEFAULT now(),
    source_row  text        NOT NULL,               -- the source row as received (checked JSON)
    -- The key leads with (table_key, updated_at): retention removes a table's versions by
    -- updated_at, in batches, through it (no index of its own), and new versions, whose
    -- updated_at is about now, land at its right edge instead of at random pages.
    PRIMARY KEY (table_key, updated_at, row_id, op, hash)
);
CREATE INDEX IF NOT EXISTS history_log ON appwrite_sync.history (tx, seq);

-- Delivery of the history to the warehouse: one row per history sink, its settled position in
-- the history log and its delivery lease, as sink_cursor is for the ledger's log. Kept apart
-- from sink_cursor, whose positions the tombstone sweep compares with the ledger's.
CREATE TABLE IF NOT EXISTS appwrite_sync.history_cursor (
    sink        text        PRIMARY KEY,
    tx          xid8        NOT NULL DEFAULT '0',
    seq         bigint      NOT NULL DEFAULT 0,
    owner       text,
    lease_until timestamptz NOT NULL DEFAULT '-infinity',
    moved_at    timestamptz NOT NULL DEFAULT now()
);
