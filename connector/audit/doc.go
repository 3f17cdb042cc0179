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
// # Recording, and the chain's single writer
//
// Recording an entry is a plain insert into appwrite_sync.audit_log in the state store
// (InsertSQL), stamped like the ledger's log with its transaction (tx, pg_current_xact_id())
// and a seq from a sequence. The events header and the body are kept as text, as they arrived:
// nothing parses them on the request's path (NewEntry checks the body in Go), and the warehouse
// parses the body once, into its jsonb column. The entry of a row change of a mapped table rides with the change
// (connector.Change.Audit): the ledger's recorder runs the insert in the implicit transaction
// of its record statement, in the same pipeline as the row history's insert (one round trip,
// one commit), so an audited change costs no commit of its own, and the change and its entry
// are durable together or not at all. Every other selected delivery (users, files, rows of
// unmapped tables, deliveries that are quarantined) is recorded by Recorder, with group commit
// of its own. No lock is shared between groups: they commit in parallel, across replicas.
//
// The chain is computed at delivery, by the single deliverer: under the row lock of
// appwrite_sync.audit_delivery (one replica delivers at a time; the others skip), it reads the
// entries after its cursor in (tx, seq) order, only those whose transaction is older than every
// transaction still running (as the ledger's log is read: see package ledger and migration
// 0003), so no entry can later commit before the cursor, and every entry is chained exactly
// once, in one order. It gives each the next seq of the chain (the warehouse's seq: from 1,
// dense, the order in which entries committed; the state store's seq only orders entries
// within a transaction), computes prev_hash and hash from the head it keeps in audit_delivery,
// copies the batch to the warehouse, and only then moves its cursor and head. A crash in
// between reads the same entries in the same order from the same head, computes the same seqs
// and hashes, and the copy skips the seqs up to the warehouse's newest, keeping the copy it
// holds (COPY of the rest; no ON CONFLICT is needed, as the chain has one writer). The state
// store keeps no hash per entry: verify reads the warehouse, and the head in audit_delivery is
// the chain's continuation. So an entry's hash is fixed when it is delivered (within a second
// of its 200, or when the warehouse is back), not when it is acknowledged: until then it is
// protected as the rest of the state store is, not by the chain.
//
// A byte-identical redelivery (the same events header and body) has the same digest (SHA-256
// of the header, "\n" and the body) and is recorded once: the digest is unique in the state
// store, and a second delivery of it is answered as recorded without a second entry. Retention
// forgets digests with their entries.
//
// # The hash (re-implementing the verifier)
//
// For the entry with sequence number seq (its place in the chain, the warehouse's seq):
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
// The delivery renders this form itself (canonical.go: rawjson.AppendJSONB writes jsonb's text
// output, held to Postgres by a test), and asks the warehouse to render the few payloads it
// does not render exactly (numbers with an exponent beyond ±100, deep nesting).
//
// A body that jsonb cannot hold (not JSON, invalid UTF-8, a \u0000 escape, a lone surrogate)
// is kept as {"$body_base64": "<standard base64 of the body>"} instead of being refused: it was
// verified, and the audit log keeps what arrived. NewEntry finds these in Go; what only jsonb
// refuses (a number numeric cannot hold, nesting past Postgres's stack) the delivery wraps when
// the warehouse refuses to render it. The state store never parses the body, so an entry riding
// with a row change never fails the ledger's group.
//
// # Outages and retention
//
// A row change is answered 200 only once it committed with its entry; an audit-only delivery
// once its entry committed. While the state store cannot commit, an audited webhook is answered
// 503 even when the spool (state.spool_dir) would take its row change: the spool keeps row
// changes only, and an audit entry never waits in it.
//
// Retention (audit.retention) removes entries older than it, in batches of RetentionBatch, from
// the warehouse and, once delivered, from the state store. From the warehouse it only ever
// removes a prefix of the chain (the oldest entries up to the first that is still due to be
// kept), so the kept entries still chain: verify starts from the first kept entry's prev_hash.
// The state store keeps delivered entries only for their digests, and the head lives in
// audit_delivery, so retention there removes any delivered entry that is due.
package audit
