-- The audit log (issue 19): every verified webhook selected by audit.events, recorded before
-- its 200 and chained by hash (see package connector/audit for the canonical form). New tables
-- only: nothing existing is rewritten or locked.
--
-- An entry is a plain insert: in the same implicit transaction as the ledger's record statement
-- for a row change, or in a group of its own for any other delivery. Like the ledger's log
-- (migration 0003) it is stamped with its transaction (tx) and a seq from a sequence, so (tx, seq)
-- orders the log, and a reader that takes only entries whose tx is older than every running
-- transaction never moves past an entry that commits later with a smaller position. No lock is
-- held across groups: the chain (the warehouse's seq, prev_hash and hash) is computed by the
-- single delivery, in (tx, seq) order.
CREATE SEQUENCE IF NOT EXISTS appwrite_sync.audit_seq;
CREATE TABLE IF NOT EXISTS appwrite_sync.audit_log (
    tx          xid8        NOT NULL DEFAULT pg_current_xact_id(),
    seq         bigint      NOT NULL DEFAULT nextval('appwrite_sync.audit_seq'),
    digest      bytea       NOT NULL UNIQUE,  -- SHA-256 of the events header, "\n" and the body: a redelivery is recorded once
    received_at timestamptz NOT NULL,
    webhook_id  text,
    project_id  text,
    user_id     text,
    events      text[]      NOT NULL,
    payload     jsonb       NOT NULL,
    PRIMARY KEY (tx, seq)
);

-- One row: the delivery's cursor in the log ((tx, seq) of the last entry the warehouse holds)
-- and the chain's head (the warehouse seq and hash of that entry). Kept apart from audit_log so
-- that retention may remove every entry without losing the head. Its row lock is the
-- delivery's, the chain's only writer: one replica delivers at a time (the others skip it),
-- without blocking recording.
CREATE TABLE IF NOT EXISTS appwrite_sync.audit_delivery (
    id        smallint PRIMARY KEY CHECK (id = 1),
    tx        xid8     NOT NULL DEFAULT '0',
    seq       bigint   NOT NULL DEFAULT 0,
    head_seq  bigint   NOT NULL DEFAULT 0,
    head_hash text     NOT NULL DEFAULT '0000000000000000000000000000000000000000000000000000000000000000'
);
INSERT INTO appwrite_sync.audit_delivery (id) VALUES (1) ON CONFLICT (id) DO NOTHING;
