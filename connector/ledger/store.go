// Package ledger is the durable heart of appwrite-sync: a Postgres table holding, per
// (table, row id), only the newest version of the row (deletes as tombstones). Webhook
// requests are acknowledged only after their change is committed here (group commit:
// concurrent requests share one transaction).
//
// Delivery reads the same table as a log: every new version stamps its row with the writing
// transaction id and a fresh seq, so the ledger in (tx, seq) order lists each row once, at
// its newest version. Each sink has a cursor in that log and a delivery lease (one replica
// delivers a sink at a time; another takes over when the lease lapses or is resigned), plus a
// small table of rows to take again (retryable failures after backoff, dead letters, rows
// deferred while an older version was in flight, re-projections). A batch is settled in one
// transaction that moves the cursor past it and records its failures.
//
// # Version guard
//
// A change advances its row when its ($updatedAt, op) is newer (a delete orders after an
// upsert at the same instant). Two different contents at the same ($updatedAt, op), which
// Appwrite produces when an API key sets $updatedAt by hand, are decided by where they come
// from. A version read from the REST API (connector.Change.Authoritative: backfill, reconcile)
// is what Appwrite holds for that $updatedAt, where a webhook may be a late or replayed
// delivery: it replaces a webhook's content, a webhook's content never replaces it, and the
// same content read again marks the held version authoritative in place (no new version for
// the sinks). Between two reads of different content the later read wins: Appwrite changed
// the row between them without moving $updatedAt, and the later read is the newer truth.
// Between webhooks the greater content hash wins, so every replica and replay picks the same
// one. The same content is a duplicate, whatever its source. The ledger column authoritative
// (migration 7) records where the held version came from.
//
// The sinks do not decide ties again: they order a row's versions by ($updatedAt, op) and
// then by the version's seq, which grows with every version the ledger advances a row to, so
// they converge to the ledger's winner and still never go back to a version it replaced.
//
// # Tombstones and the horizon
//
// A delete leaves its row as a tombstone, so a late or replayed older upsert of the row is
// stale. Admin.SweepTombstones (hourly) removes the tombstones past state.tombstone_retention
// that every sink has applied, to bound the ledger's growth. A signed webhook verifies forever,
// though, and a captured upsert replayed once its row's tombstone is gone would find no
// version to lose to. So each table has a tombstone horizon (ledger_horizon): the newest
// $updatedAt of its tombstones past the retention. A webhook upsert of a row the ledger does
// not hold, at or before its table's horizon, is refused as stale (counted in
// appwrite_sync_changes_below_horizon_total, and logged). A row re-created after its delete
// carries a newer $updatedAt than the delete. The horizon stays behind the retention (a
// tombstone dated in the future is kept until that date passed), so a webhook of a re-created
// or new row is refused only when its $updatedAt is older than the retention and not newer
// than the horizon, which Appwrite writes only when an API key sets $updatedAt by hand
// (imports). Rows read from the REST API are never refused, so a reconcile records those.
// Deletes are never refused.
//
// Keeping every tombstone, compacted to its key and version, was the alternative: exact, but
// about 250 bytes per deleted row forever (measured for 100,000 tombstones with 20-character
// ids and an empty source: 141 bytes of heap, 66 of primary key, 32 of log index, 7 of
// tombstone index), 250 MB per million deletes, which is the growth the sweep exists to stop.
// The horizon is one row per table; the record statement reads the newest of them once (no
// extra round trip), probes a table's own horizon only for an upsert not newer than that, and
// the ledger itself only for upserts at or before the table's horizon.
//
// A record statement that began before the horizon rose reads neither the new horizon nor,
// if the sweep removed the tombstone meanwhile, the tombstone, and would insert the replay.
// So a sweep removes only the tombstones covered by a horizon raised at least horizonGrace
// before (by an earlier sweep): tombstones leave the ledger one sweep after their retention.
//
// # Row history
//
// The ledger's row holds only a row's newest version, and its log collapses many versions of a
// row into one entry: neither can give the warehouse every version. For tables with
// postgres.history (RecorderOptions.History), the recorder also appends each distinct version
// of a group to appwrite_sync.history (migration 9), keyed by the version itself (table, row id,
// $updatedAt, op, content hash) with ON CONFLICT DO NOTHING: late versions that are stale for
// the ledger, tie-losers, deletes and versions read by backfill or reconcile are kept, a
// duplicate or a replay of a kept version writes nothing. The insert goes in the same batch
// as the record statement, which Postgres runs as one implicit transaction in one round trip,
// so a version is durable exactly when its change is acknowledged. Groups without a history
// table send what they always sent; a group with one pays one multi-row insert (and its three
// index entries per version) in the same round trip. A webhook upsert the horizon refuses is
// not kept either; a version already past the table's retention is not kept at all.
//
// The history table is a log of its own, built like the ledger's: each version is stamped
// with its transaction id and a seq, and HistoryDelivery reads it in (tx, seq) order after its
// cursor, taking only entries older than every running transaction, and moves the cursor
// (appwrite_sync.history_cursor, one row per history sink, with a lease as sink_cursor has)
// after the warehouse wrote the batch. The warehouse's <table>_history has the version as its
// primary key and takes every write with ON CONFLICT DO NOTHING, so a crash between the write
// and the cursor's move, or a second replica after a lease lapsed, re-sends a batch without a
// second row. The entries are never rewritten: there is nothing to collapse, retry per row or
// dead-letter (a version whose values do not convert is written with data NULL). Retention
// (Admin.SweepHistory) deletes by $updatedAt, a thousand versions per statement, each its own
// short transaction.
//
// # Relationships
//
// A table may declare relationships (mapping.Table.Relationships): columns holding rows of
// another mapped table. The recorder writes, in the transaction that records a new version of
// such a row, the links that version holds (ledger_links, migration 8: one row per related
// row, read by mapping.Table.Links from an id, an object with "$id", a list of either, or
// null); a column the payload leaves out keeps the links recorded before, and a delete keeps
// them (a soft-deleted warehouse row keeps its joined values) until the tombstone is swept.
// Links are the truth about which rows are related; the values come from the ledger: before a
// batch is applied, Joiner replaces each relationship column with the newest recorded
// versions of the related rows (null when the ledger does not hold them or holds them
// deleted), one query per batch and level of a chain, so a nested object a webhook carried is
// never taken for the related row's values.
//
// Fan-out. A new version of a row that other rows may link to queues a fan-out of it
// (ledger_fanout), in the same transaction. Fanout works the queue: each step takes the
// oldest entry (FOR UPDATE SKIP LOCKED, so replicas share the work), reads up to a batch of
// the rows linking to it through the ledger_links_to index (keyset order after the entry's
// position), gives each live one a new (tx, seq) — it moves to the end of the delivery log,
// exactly as a new version would, and every sink's deliverer takes it from there — and moves
// the entry past them or removes it, all in one transaction: a crash re-does at most the
// uncommitted batch, and a restart resumes after the last committed one. Rows linking to a
// row that other rows link to in turn queue a fan-out of their own, up to the mapping's join
// depth (a company's change reaches its authors' posts), which also bounds a cycle of
// relationships. The recorder queues the fan-out without looking for linking rows: a row
// linking to it may be committing concurrently, and either the fan-out (after both commits)
// sees its link or that row's own delivery (after both commits) joins the new version. Rows
// recorded before the row they link to therefore fill in when it arrives. After each batch's
// worth of re-queued rows (one large fan-out, or many small ones) the worker waits until every
// sink's cursor passed them (at most a few seconds), so the log never holds much more than one
// batch of fan-out ahead of changes recorded after it: a fan-out of 100,000 rows interleaves
// with other deliveries instead of queueing them behind it.
//
// Version guards. A re-queued row keeps its version ($updatedAt, op, content hash, source);
// only its seq grows. The warehouse upsert's guard accepts a write when updated_at is newer,
// or equal with the same version_hash or a version_seq not greater than the new one
// (pgsink): a re-projection has the same updated_at and hash and a greater seq, so it passes,
// and an older version still never replaces a newer one. The Meilisearch sink's in-process
// guard orders ($updatedAt, op, seq) and skips only what is older, so the re-projection
// (greater seq) is written. Re-projection after a mapping change (Admin.Reproject) re-sends
// the same seq, which both guards accept as equal. When a table's relationships change
// (a relationship added to the mapping), Admin.RebuildLinks reads the links of its recorded
// rows again from their stored source rows before the re-projection that change causes.
//
// What Appwrite sends for relationship columns (read in appwrite/appwrite, src/Appwrite/Event/
// Event.php, src/Appwrite/Event/Realtime.php and the row actions under
// src/Appwrite/Platform/Modules/Databases/Http/Databases/Collections/Documents/, and
// utopia-php/database's Database::getDocument): a webhook body is the event payload, which is
// the writing call's response (set with setPayload($response->getPayload(), sensitive:
// $relationships), or by the shared API shutdown hook from the response when the action does
// not set it, as the newest Create.php does). Event::setPayload only records the "sensitive"
// keys; getPayload, which the webhooks worker sends, returns them all, and only
// Realtime::getRealtimePayload leaves them out. So webhooks carry relationship columns as the
// response had them, in every version since the Event::setPayload sensitive argument exists
// (1.5.x). In at least one version of the row actions
// (src/Appwrite/Platform/Modules/Databases/Http/Documents/Create.php, the one still calling
// getInternalId) the sensitive list is built with fn ($row) => $document->getAttribute('key')
// — the created row's own "key" column, not each relationship's key — so realtime stripped
// nothing for rows created through it; the other versions map each relationship attribute to
// its key. What the response holds:
// through 1.7.x utopia-php/database populates relationships on reads and writes when no select
// asks otherwise (getDocument: resolveRelationships && (empty($selects) ||
// !empty($nestedSelections))), so nested related rows (to RELATION_MAX_DEPTH) arrive; from
// 1.8.0 relationship loading is opt-in (Appwrite's announcement of 2025-08-28 and its query
// docs: "by default, relationship attributes contain only document IDs"; related rows load only
// with Query.select(["*", "author.*"])), so a 1.8+ body holds ids, or the nested objects the
// client wrote. The per-version statements above rest on the stored source without release
// tags: which release first shipped each file version was not checked against tags. Hence the
// rule here: take ids from whatever shape arrives, and never the values.
//
// # Audit log entries
//
// A change whose delivery the audit log selects carries its entry (connector.Change.Audit):
// the recorder inserts the group's entries into appwrite_sync.audit_log (audit.InsertSQL) in the
// same batch, between the history insert and the record statement, so the entry is durable
// exactly when the change is, at no commit of its own. The entry is recorded whatever the
// ledger does with the change (a stale or duplicate change's delivery is audited too), once per
// digest. The chain over the entries is computed at delivery (package connector/audit).
//
// It is hand-written rather than built on a job queue (river, etc.) because its unit of work
// is not a job but "the newest version of a row": many updates to one row must collapse into
// one write, and a newer version arriving while an older one is in flight must wait without
// the row ever being in two in-flight batches. Here that costs one upsert per change and one
// cursor update per batch. An earlier design kept a queue row per (sink, row), claimed with
// FOR UPDATE SKIP LOCKED: it cost three writes per change and two per delivered row and
// measured 5-6x slower (see BENCHMARKS.md and the issue notes).
package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/appwrite-sync/appwrite-sync/internal/pgerr"
	"github.com/appwrite-sync/appwrite-sync/migrations"
)

// ErrUnavailable means the state store could not be reached or did not commit: nothing was
// stored, and the webhook must answer 503.
var ErrUnavailable = errors.New("state store unavailable")

// OpenPool connects a pgx pool to the state store (or the warehouse).
func OpenPool(ctx context.Context, url string, maxConns int32) (*pgxpool.Pool, error) {
	return openPool(ctx, url, maxConns, nil)
}

// OpenLogPool is OpenPool for the recorder and the delivery queue (NewRecorder, NewQueue):
// their statements run with generic plans (plan_cache_mode force_generic_plan, unless the URL
// sets plan_cache_mode). Postgres otherwise plans the record statement and the log read
// afresh for half or more of their executions, because a custom plan's row estimates for the
// unnest of array parameters look cheaper than the generic plan's, and planning is then a
// large share of their time (BENCHMARKS.md). Their generic plans are the same index plans.
// The state store's other statements (status counts, admin listings) keep Postgres's choice,
// because their generic plans can be much worse.
func OpenLogPool(ctx context.Context, url string, maxConns int32) (*pgxpool.Pool, error) {
	return openPool(ctx, url, maxConns, map[string]string{"plan_cache_mode": "force_generic_plan"})
}

func openPool(ctx context.Context, url string, maxConns int32, params map[string]string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, errors.New("parsing database URL: invalid connection string") // never echo the URL: it may hold a password
	}
	for k, v := range params {
		if _, set := cfg.ConnConfig.RuntimeParams[k]; !set {
			cfg.ConnConfig.RuntimeParams[k] = v
		}
	}
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	cfg.HealthCheckPeriod = 10 * time.Second
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("creating pool: %w", err)
	}
	return pool, nil
}

// Reasons a NotReadyError gives: short, fixed, safe to show anyone.
const (
	ReasonUnreachable = "state store unreachable"
	ReasonNotMigrated = "state store not migrated"
	ReasonDirty       = "state store migration dirty"
)

// NotReadyError says why the state store cannot take changes. Reason is one of the Reason
// constants, what an unauthenticated probe (/readyz) may learn; Err holds the details
// (address, user, database, the driver's text), for the log only.
type NotReadyError struct {
	Reason string
	Err    error
}

func (e *NotReadyError) Error() string { return e.Reason + ": " + e.Err.Error() }

func (e *NotReadyError) Unwrap() error { return e.Err }

// Ready reports nil when the state store is reachable and migrated to this binary's
// version, and a *NotReadyError otherwise.
func Ready(ctx context.Context, pool *pgxpool.Pool) error {
	var v int64
	var dirty bool
	err := pool.QueryRow(ctx, migrations.StatusQuery).Scan(&v, &dirty)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return &NotReadyError{ReasonNotMigrated, errors.New("no migration recorded: run `appwrite-sync migrate`")}
	case pgerr.IsUndefinedTable(err): // never migrated
		return &NotReadyError{ReasonNotMigrated, fmt.Errorf("run `appwrite-sync migrate`: %w", err)}
	case err != nil:
		return &NotReadyError{ReasonUnreachable, err}
	}
	latest, _ := migrations.Latest()
	if dirty {
		return &NotReadyError{ReasonDirty, fmt.Errorf("migration %d is dirty: fix the state store by hand, then run `appwrite-sync migrate`", v)}
	}
	if uint(v) < latest {
		return &NotReadyError{ReasonNotMigrated, fmt.Errorf("at migration %d, this binary needs %d: run `appwrite-sync migrate`", v, latest)}
	}
	return nil
}
