-- Relationships (see the ledger package documentation, "Relationships").
--
-- ledger_links: the links the newest version of each row holds through the relationship
-- columns its table declares, one row per related row (ord: the place in a to-many list,
-- -1 for a to-one column). Written by the recorder in the transaction that records the row;
-- read by the delivery (joins, one query per batch) and, through ledger_links_to, by the
-- fan-out (the rows linking to a changed row, never a scan).
CREATE TABLE IF NOT EXISTS appwrite_sync.ledger_links (
    from_table text    NOT NULL,
    from_id    text    NOT NULL,
    col        text    NOT NULL,
    ord        integer NOT NULL,
    to_table   text    NOT NULL,
    to_id      text    NOT NULL,
    PRIMARY KEY (from_table, from_id, col, ord)
);
CREATE INDEX IF NOT EXISTS ledger_links_to ON appwrite_sync.ledger_links (to_table, to_id, from_table, from_id);

-- ledger_fanout: related rows whose change the rows linking to them have not all been
-- re-queued for yet. after_table/after_id is how far the fan-out got (keyset order of the
-- linking rows): each batch moves it in the transaction that re-queues the batch, so a
-- restart resumes where the last batch ended. depth counts the relationships walked so far
-- (chains: a company's change re-queues its authors, depth 1, whose posts follow, depth 2).
CREATE TABLE IF NOT EXISTS appwrite_sync.ledger_fanout (
    id          bigserial   PRIMARY KEY,
    table_key   text        NOT NULL,
    row_id      text        NOT NULL,
    depth       integer     NOT NULL DEFAULT 0,
    after_table text,
    after_id    text,
    enqueued_at timestamptz NOT NULL DEFAULT now()
);
-- One not-started fan-out per row: a row changed many times before its fan-out began needs
-- one pass.
CREATE UNIQUE INDEX IF NOT EXISTS ledger_fanout_waiting ON appwrite_sync.ledger_fanout (table_key, row_id, depth) WHERE after_table IS NULL;

-- Per table that declares relationships, the relationships its links were read with: when
-- they change (a relationship added to the mapping), the links of the rows already in the
-- ledger are read again from their stored source rows before the re-projection joins them.
CREATE TABLE IF NOT EXISTS appwrite_sync.ledger_links_spec (
    table_key   text        PRIMARY KEY,
    fingerprint text        NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
