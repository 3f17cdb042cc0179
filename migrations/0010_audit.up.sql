-- The audit log (issue 19): every verified webhook selected by audit.events, recorded before
-- its 200 and chained by hash (see package connector/audit for the canonical form). New tables
-- only: nothing existing is rewritten or locked.
--
-- seq is assigned by the recorder under the row lock of audit_head, so entries commit in seq
-- order with no gap, and the chain has a single writer whatever the number of replicas.
CREATE TABLE IF NOT EXISTS appwrite_sync.audit_log (
    seq         bigint      PRIMARY KEY,
    digest      bytea       NOT NULL UNIQUE,  -- SHA-256 of the events header, "\n" and the body: a redelivery is recorded once
    received_at timestamptz NOT NULL,
    webhook_id  text,
    project_id  text,
    user_id     text,
    events      text[]      NOT NULL,
    payload     jsonb       NOT NULL,
    prev_hash   text        NOT NULL,
    hash        text        NOT NULL
);

-- One row: the newest entry's seq and hash (the chain's head). Kept apart from audit_log so
-- that retention may remove every entry without losing the head; its row lock is the chain's
-- single-writer lock.
CREATE TABLE IF NOT EXISTS appwrite_sync.audit_head (
    id   smallint PRIMARY KEY CHECK (id = 1),
    seq  bigint   NOT NULL,
    hash text     NOT NULL
);
INSERT INTO appwrite_sync.audit_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000')
ON CONFLICT (id) DO NOTHING;

-- One row: the seq up to which the warehouse holds the log. Its row lock is the delivery's:
-- one replica delivers at a time (the others skip it), without blocking recording.
CREATE TABLE IF NOT EXISTS appwrite_sync.audit_delivery (
    id        smallint PRIMARY KEY CHECK (id = 1),
    delivered bigint   NOT NULL DEFAULT 0
);
INSERT INTO appwrite_sync.audit_delivery (id) VALUES (1) ON CONFLICT (id) DO NOTHING;
