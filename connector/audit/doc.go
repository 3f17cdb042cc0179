// Package audit keeps the audit log (issue 19): every verified webhook whose events header
// shares an element with audit.events, whatever its resource (users, files, rows, ...), is
// recorded in the state store before it is answered 200, chained by hash, and delivered to
// the warehouse table audit.table (default audit_log, in warehouse.schema), where `appwrite-sync
// audit verify` checks the chain.
//
// # Selection
//
// Appwrite selects the webhooks to call by set intersection: a webhook subscribed to
// "users.*" is called because the event's generated list (Event::generateEvents; the whole list
// is the X-Appwrite-Webhook-Events header) contains the string "users.*". That list holds every
// wildcard spelling of the event: each id replaced by "*" alone and in combination, and each
// shorter prefix ("users.u1.create", "users.*.create", "users.u1", "users.*", ...). So a plain
// string intersection of audit.events with the header's elements selects exactly what an
// Appwrite webhook subscribed to audit.events would receive, and nothing is gained by glob
// matching: a "*" stands for one whole id, as in Appwrite, never for part of one ("users.a*" is
// refused by ValidatePattern because it could never match). Matching costs one map probe per
// element of the header.
//
// # Recording and the chain's single writer
//
// Recorder commits groups of entries (group commit, as the ledger's recorder), each in one
// statement that takes the row lock of appwrite_sync.audit_head, the chain's head, reads its
// seq and hash, gives the group's new entries the next seqs, computes their hashes (sha256 in
// Postgres; Verify recomputes them in Go, so the two implementations of the definition below
// are held together by the tests), inserts them and moves the head. The lock makes the
// recorder the chain's only writer at any instant, across every replica on the state store:
// two replicas can never append two entries to the same head (a fork), and seqs commit in
// order with no gap. Chaining at record time rather than at delivery fixes every acknowledged
// entry's hash the moment it is acknowledged (the state store holds the same chain the
// warehouse will), and keeps the delivery a plain copy, idempotent by seq. The price is a
// section serialised per group, not per entry: one statement, its commit included.
//
// A byte-identical redelivery (the same events header and body) has the same digest (SHA-256
// of the header, "\n" and the body) and is recorded once: the digest is unique in the state
// store, and a second delivery of it is answered as recorded without a second entry. Retention
// forgets digests with their entries.
//
// # The hash (re-implementing the verifier)
//
// For the entry with sequence number seq:
//
//	hash = lower-case hex of SHA-256( prev_hash || "\n" || seq || "\n" || canonical )
//
// where prev_hash is the previous entry's hash (64 hex digits; 64 zeros for seq 1), seq is
// written in decimal without sign or leading zeros, and canonical is what Postgres renders for
//
//	jsonb_build_array(to_char(received_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
//	    webhook_id, project_id, user_id, events, event, payload)::text
//
// over the entry's columns (webhook_id, project_id and user_id are null when the header was
// missing or empty; events is the header split at commas; event its first element; payload
// the body as jsonb). Every string is hashed as its UTF-8 bytes. The canonical form is taken
// from Postgres's jsonb text output (keys ordered by length then bytes, ", " and ": "
// separators, numbers as stored) rather than from the request's bytes because the warehouse
// keeps the payload as jsonb: any verifier that reads the table through Postgres, in SQL or
// in Python, gets the same text with `SELECT ...::text`. docs/operations.md gives the query.
//
// A body that jsonb cannot hold (not JSON, invalid UTF-8, a \u0000 escape, a lone surrogate)
// is kept as {"$body_base64": "<standard base64 of the body>"} instead of being refused: it was
// verified, and the audit log keeps what arrived.
//
// # Outages and retention
//
// The audit entry is committed before the row change of the same webhook is recorded, and the
// webhook is answered 200 only when both are, so an acknowledged change always has its audit
// entry. While the state store cannot commit, an audited webhook is answered 503 even when the
// spool (state.spool_dir) would take its row change: the spool keeps row changes only, and an
// audit entry never waits in it (its seq and hash are given under the state store's lock).
//
// Retention (audit.retention) removes entries older than it, in batches of RetentionBatch, from
// the warehouse and, once delivered, from the state store. It only ever removes a prefix of the
// log (the oldest entries up to the first that is still due to be kept), so the kept entries
// still chain: verify starts from the first kept entry's prev_hash.
package audit
