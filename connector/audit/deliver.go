package audit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/sirupsen/logrus"

	"github.com/appwrite-sync/appwrite-sync/connector/metrics"
	"github.com/appwrite-sync/appwrite-sync/internal/defaults"
	"github.com/appwrite-sync/appwrite-sync/internal/pgerr"
)

// Defaults of DelivererOptions.
const (
	// DeliverBatchDefault is the most entries one delivery transaction copies.
	DeliverBatchDefault = 1000
	// PollDefault is how often the delivery looks for entries other replicas recorded.
	PollDefault = time.Second
	// LingerDefault is how long the delivery waits after a Notify before it reads, so that
	// it copies the entries of many group commits at once: a delivery transaction per group
	// cost more than the recording itself under load.
	LingerDefault = 100 * time.Millisecond
	// RetentionBatch is the most entries one retention statement removes (short row locks).
	RetentionBatch = 1000
	// SweepEvery is how often retention runs.
	SweepEvery = time.Hour
)

// DelivererOptions configures a Deliverer.
type DelivererOptions struct {
	// Schema and Table name the warehouse table (warehouse.schema, audit.table). Required.
	Schema, Table string
	// Retention removes entries older than it; 0 keeps every entry.
	Retention time.Duration
	// Batch bounds one delivery transaction. Default DeliverBatchDefault.
	Batch int
	// Poll is how often the delivery looks for work without a Notify. Default PollDefault.
	Poll time.Duration
	// Linger is how long a Notify waits before the delivery reads. Default LingerDefault.
	Linger  time.Duration
	Metrics *metrics.Metrics
	Log     *logrus.Entry
	// Now is the clock of retention. Default time.Now.
	Now func() time.Time
}

// Deliverer copies the state store's audit log into the warehouse table and applies
// retention to both. Several replicas may run one: the row lock of audit_delivery lets one
// deliver at a time, and the copy is idempotent by seq.
type Deliverer struct {
	state, wh *pgxpool.Pool
	opts      DelivererOptions
	table     string // quoted schema.table
	wake      chan struct{}
}

// NewDeliverer returns a Deliverer from the state store to the warehouse.
func NewDeliverer(state, wh *pgxpool.Pool, opts DelivererOptions) *Deliverer {
	defaults.Positive(&opts.Batch, DeliverBatchDefault)
	defaults.Positive(&opts.Poll, PollDefault)
	defaults.Positive(&opts.Linger, LingerDefault)
	defaults.Log(&opts.Log)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Deliverer{state: state, wh: wh, opts: opts, table: pgx.Identifier{opts.Schema, opts.Table}.Sanitize(), wake: make(chan struct{}, 1)}
}

// Notify wakes the delivery (the recorder appended entries).
func (d *Deliverer) Notify() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends, and applies retention every SweepEvery.
func (d *Deliverer) Run(ctx context.Context) {
	poll := time.NewTicker(d.opts.Poll)
	defer poll.Stop()
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	defer linger.Stop()
	ready := false
	lastSweep := time.Time{}
	for {
		if !ready {
			if err := d.EnsureTable(ctx); err != nil {
				if ctx.Err() == nil {
					d.opts.Log.WithError(err).Warn("creating the audit log table in the warehouse failed; trying again")
				}
			} else {
				ready = true
				d.refreshKept(ctx)
			}
		}
		if ready {
			if _, err := d.Deliver(ctx); err != nil && ctx.Err() == nil {
				d.opts.Log.WithError(err).Warn("delivering the audit log to the warehouse failed; trying again")
			}
			if time.Since(lastSweep) >= SweepEvery {
				lastSweep = time.Now()
				if _, _, err := d.Sweep(ctx); err != nil && ctx.Err() == nil {
					d.opts.Log.WithError(err).Warn("applying audit.retention failed; trying again at the next sweep")
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
			linger.Reset(d.opts.Linger)
			select {
			case <-ctx.Done():
				return
			case <-linger.C:
			}
		case <-poll.C: // also brings the loop to the retention check above
		}
	}
}

// EnsureTable creates the warehouse schema and table when missing.
func (d *Deliverer) EnsureTable(ctx context.Context) error {
	schema := pgx.Identifier{d.opts.Schema}.Sanitize()
	idx := pgx.Identifier{d.opts.Table + "_received_at"}.Sanitize()
	ddl := fmt.Sprintf(`CREATE SCHEMA IF NOT EXISTS %s;
CREATE TABLE IF NOT EXISTS %s (
    seq         bigint      PRIMARY KEY,
    received_at timestamptz NOT NULL,
    webhook_id  text,
    project_id  text,
    user_id     text,
    events      text[]      NOT NULL,
    event       text,
    payload     jsonb       NOT NULL,
    prev_hash   text        NOT NULL,
    hash        text        NOT NULL
);
CREATE INDEX IF NOT EXISTS %s ON %s (received_at);`, schema, d.table, idx, d.table)
	for attempt := 0; ; attempt++ {
		_, err := d.wh.Exec(ctx, ddl)
		// Two replicas creating the schema or table at once: one wins, the other sees it next time.
		if err != nil && attempt < 2 && pgerr.IsUniqueViolation(err, "") {
			continue
		}
		return err
	}
}

// claimSQL takes the delivery's row lock (the chain's single writer) and reads its cursor in
// the state store's log and the chain's head.
const claimSQL = `SELECT tx, seq, head_seq, head_hash FROM appwrite_sync.audit_delivery WHERE id = 1 FOR UPDATE SKIP LOCKED`

// readSQL reads the log after the cursor in (tx, seq) order, as the ledger's log is read: only
// entries whose transaction is older than every transaction still running, so the cursor never
// moves past an entry that commits later with a smaller position, and every entry is chained
// once, in one order. It reads the columns as stored: the canonical form is rendered in the
// service (canonical.go).
const readSQL = `
SELECT tx, seq, received_at, webhook_id, project_id, user_id, events, payload
FROM appwrite_sync.audit_log
WHERE (tx, seq) > ($1::xid8, $2::bigint) AND tx < (SELECT pg_snapshot_xmin(pg_current_snapshot()))
ORDER BY tx, seq LIMIT $3`

// backlogSQL counts the state store's entries after the delivery's cursor (not in the
// warehouse yet) and gives the age of the oldest, through the log's primary key.
const backlogSQL = `
SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(l.received_at)), 0)::float8
FROM appwrite_sync.audit_delivery c
JOIN appwrite_sync.audit_log l ON (l.tx, l.seq) > (c.tx, c.seq)
WHERE c.id = 1`

// Backlog returns how many recorded entries the warehouse does not hold yet, and how long
// the oldest of them has waited since its webhook was received (0 when none): the audit
// log's part of /admin/status.
func (d *Deliverer) Backlog(ctx context.Context) (pending int64, lag time.Duration, err error) {
	var secs float64
	if err := d.state.QueryRow(ctx, backlogSQL).Scan(&pending, &secs); err != nil {
		return 0, 0, fmt.Errorf("counting undelivered audit entries: %w", err)
	}
	return pending, time.Duration(secs * float64(time.Second)), nil
}

// auditColumns are the warehouse table's columns, in the order delivery writes them.
var auditColumns = []string{"seq", "received_at", "webhook_id", "project_id", "user_id", "events", "event", "payload", "prev_hash", "hash"}

// Deliver copies every entry the warehouse does not have yet, in batches, and returns how
// many it copied. Another replica delivering at the same time makes it return 0 at once.
func (d *Deliverer) Deliver(ctx context.Context) (int, error) {
	total := 0
	for {
		n, err := d.deliverBatch(ctx)
		total += n
		if err != nil || n < d.opts.Batch {
			if err == nil && n > 0 {
				d.refreshKept(ctx)
			}
			return total, err
		}
	}
}

// deliverBatch chains and copies one batch. The warehouse commits first: a crash before the
// cursor moves reads the same entries again in the same order from the same head, so it
// computes the same seqs and hashes, and the warehouse keeps the copy it holds (see write).
func (d *Deliverer) deliverBatch(ctx context.Context) (int, error) {
	n := 0
	err := pgx.BeginFunc(ctx, d.state, func(tx pgx.Tx) error {
		var cur struct {
			tx           uint64 // xid8
			seq, headSeq int64
			headHash     string
		}
		err := tx.QueryRow(ctx, claimSQL).Scan(&cur.tx, &cur.seq, &cur.headSeq, &cur.headHash)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // another replica delivers
		}
		if err != nil {
			return fmt.Errorf("claiming the audit delivery: %w", err)
		}
		stored, err := readEntries(ctx, tx, cur.tx, cur.seq, d.opts.Batch)
		if err != nil {
			return fmt.Errorf("reading the audit log: %w", err)
		}
		batch := make([][]any, 0, len(stored)) // rows in auditColumns' order
		seq, prev := cur.headSeq, cur.headHash
		for _, e := range stored {
			r, err := d.render(ctx, e)
			if err != nil {
				return fmt.Errorf("rendering audit entry (%d, %d): %w", e.tx, e.seq, err)
			}
			seq++
			hash := chainHash(prev, seq, r.canonical)
			batch = append(batch, []any{seq, e.receivedAt, e.webhookID, e.projectID, e.userID, r.events, r.event, r.payload, prev, hash})
			prev = hash
		}
		if len(batch) == 0 {
			return nil
		}
		if err := d.write(ctx, batch); err != nil {
			return fmt.Errorf("writing the audit log to the warehouse: %w", err)
		}
		last := stored[len(stored)-1]
		if _, err := tx.Exec(ctx, `UPDATE appwrite_sync.audit_delivery SET tx = $1, seq = $2, head_seq = $3, head_hash = $4 WHERE id = 1`,
			last.tx, last.seq, seq, prev); err != nil {
			return err
		}
		n = len(batch)
		return nil
	})
	if err != nil {
		return 0, err
	}
	if n > 0 && d.opts.Metrics != nil {
		d.opts.Metrics.AuditDelivered.Add(float64(n))
	}
	return n, nil
}

// splitEvents is string_to_array(events, ','): the events header's elements (none for "").
func splitEvents(ev string) []string {
	if ev == "" {
		return []string{}
	}
	return strings.Split(ev, ",")
}

// write copies a batch (seqs ascending, dense) to the warehouse. The chain has one writer (the
// delivery's row lock), so the warehouse holds no seq of the batch except after a crash
// between its commit and the cursor's move, and then only a prefix of it, with the same
// values: write skips the seqs up to the warehouse's newest and copies the rest with COPY,
// which costs a fraction of an INSERT of arrays. Should the copy still meet a seq (a delivery
// that lost its lock while its warehouse statement ran, committing meanwhile), it looks for
// the warehouse's newest seq again and copies what is still missing.
func (d *Deliverer) write(ctx context.Context, batch [][]any) error {
	for attempt := 0; ; attempt++ {
		var newest int64
		if err := d.wh.QueryRow(ctx, fmt.Sprintf(`SELECT COALESCE(max(seq), 0) FROM %s`, d.table)).Scan(&newest); err != nil {
			return err
		}
		rest := batch
		for len(rest) > 0 && rest[0][0].(int64) <= newest {
			rest = rest[1:]
		}
		if len(rest) == 0 {
			return nil
		}
		_, err := d.wh.CopyFrom(ctx, pgx.Identifier{d.opts.Schema, d.opts.Table}, auditColumns, pgx.CopyFromRows(rest))
		if err == nil || attempt == 2 || !pgerr.IsUniqueViolation(err, "") {
			return err
		}
	}
}

// refreshKept sets the kept gauge: seqs are dense and retention removes a prefix, so the
// count is the span of the warehouse's seqs (two index probes, no scan).
func (d *Deliverer) refreshKept(ctx context.Context) {
	if d.opts.Metrics == nil {
		return
	}
	var n int64
	if err := d.wh.QueryRow(ctx, fmt.Sprintf(`SELECT COALESCE(max(seq) - min(seq) + 1, 0) FROM %s`, d.table)).Scan(&n); err == nil {
		d.opts.Metrics.AuditKept.Set(float64(n))
	}
}
