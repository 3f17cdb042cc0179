-- The state store of appwrite-sync: the change ledger, per-sink delivery queue, quarantine.
CREATE SCHEMA IF NOT EXISTS appwrite_sync;

-- Ledger versions: a row's seq grows every time its version advances, so per row the seq order
-- equals the version order. Sinks mark the seq they applied.
CREATE SEQUENCE IF NOT EXISTS appwrite_sync.version_seq;

-- One row per (table, row id): the newest version seen, deletes kept as tombstones.
CREATE TABLE IF NOT EXISTS appwrite_sync.ledger (
    table_key   text        NOT NULL,               -- "database/table"
    row_id      text        NOT NULL,               -- Appwrite $id
    seq         bigint      NOT NULL,
    updated_at  timestamptz NOT NULL,               -- $updatedAt of the version
    op          smallint    NOT NULL,               -- 1 upsert, 2 delete (delete wins a tie)
    hash        bytea       NOT NULL,               -- content hash: deterministic tie-break
    sequence    text,                               -- Appwrite $sequence (opaque)
    action      text        NOT NULL,               -- create/update/upsert/delete/backfill
    row         jsonb       NOT NULL,               -- the source row as received
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (table_key, row_id)
);
CREATE INDEX IF NOT EXISTS ledger_tombstones ON appwrite_sync.ledger (recorded_at) WHERE op = 2;

-- Per sink, the rows whose newest version is not applied yet. available_at doubles as the
-- lease: a claim moves it to the lease's expiry, so claimed rows are not claimable again until
-- the lease lapses (a dead worker's claims return by themselves).
CREATE TABLE IF NOT EXISTS appwrite_sync.pending (
    sink         text        NOT NULL,
    table_key    text        NOT NULL,
    row_id       text        NOT NULL,
    seq          bigint      NOT NULL,              -- newest ledger seq to apply
    enqueued_at  timestamptz NOT NULL DEFAULT now(),-- oldest unapplied change: lag
    available_at timestamptz NOT NULL DEFAULT now(),
    lease_owner  text,
    attempts     integer     NOT NULL DEFAULT 0,
    last_error   text,
    dead_at      timestamptz,                       -- dead-lettered when set
    dead_seq     bigint,
    PRIMARY KEY (sink, table_key, row_id)
) WITH (fillfactor = 70);
-- Claims walk this index in enqueue order and filter on available_at in the heap. available_at
-- is deliberately not indexed: a claim then only rewrites unindexed columns, which Postgres
-- does as a HOT update (no index insertions) thanks to the fillfactor's free space.
CREATE INDEX IF NOT EXISTS pending_ready ON appwrite_sync.pending (sink, enqueued_at) WHERE dead_at IS NULL;
CREATE INDEX IF NOT EXISTS pending_dead ON appwrite_sync.pending (sink, dead_at) WHERE dead_at IS NOT NULL;

-- Validly signed requests that could not be decoded or mapped, kept raw for replay.
CREATE TABLE IF NOT EXISTS appwrite_sync.quarantine (
    id            bigserial   PRIMARY KEY,
    webhook       text        NOT NULL,
    reason        text        NOT NULL,
    headers       jsonb       NOT NULL DEFAULT '{}',
    body          bytea       NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now(),
    replayed_at   timestamptz,
    replay_result text
);

-- The mapping fingerprint each sink last applied per table: a change triggers re-projection.
CREATE TABLE IF NOT EXISTS appwrite_sync.sink_tables (
    sink        text NOT NULL,
    table_key   text NOT NULL,
    fingerprint text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (sink, table_key)
);
