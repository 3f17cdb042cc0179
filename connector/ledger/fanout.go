package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/sirupsen/logrus"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/connector/metrics"
	"github.com/appwrite-sync/appwrite-sync/internal/pgerr"
	"github.com/appwrite-sync/appwrite-sync/mapping"
)

// Fan-out defaults.
const (
	// FanoutBatchDefault is how many linking rows one fan-out transaction re-queues: a
	// thousand dependents go out in one batch, and a larger fan-out in steps of it.
	FanoutBatchDefault = 1000
	// fanoutCatchUp bounds how long the fan-out waits for the sinks to deliver its previous
	// batch before re-queuing the next (a sink that is down must not stop it for good).
	fanoutCatchUp = 5 * time.Second
	fanoutPoll    = time.Second
	// fanoutMaxBackoff caps the wait between retries of a failing fan-out step.
	fanoutMaxBackoff = 30 * time.Second
)

// FanoutOptions configures the fan-out worker.
type FanoutOptions struct {
	// BatchSize is the most linking rows re-queued per transaction. Default FanoutBatchDefault.
	BatchSize int
	// Sinks are the sinks delivering from the log: after each BatchSize rows re-queued (one
	// large fan-out or many small ones) the worker waits (up to fanoutCatchUp) until their
	// cursors passed them, so the log never holds much more than one batch of fan-out ahead
	// of other changes.
	Sinks []string
	// Notify is called after a batch was re-queued (wakes the delivery engine).
	Notify  func()
	Metrics *metrics.Metrics
	Log     *logrus.Entry
}

// Fanout re-queues the rows that link to a changed row, so every sink projects them again
// with the related row's new version (see the package documentation, "Relationships").
type Fanout struct {
	pool  *pgxpool.Pool
	m     *mapping.Mapping
	opts  FanoutOptions
	depth int
	wake  chan struct{}
}

// NewFanout prepares the fan-out worker of mapping m's relationships.
func NewFanout(pool *pgxpool.Pool, m *mapping.Mapping, opts FanoutOptions) *Fanout {
	if opts.BatchSize <= 0 {
		opts.BatchSize = FanoutBatchDefault
	}
	if opts.Log == nil {
		opts.Log = logrus.NewEntry(logrus.StandardLogger())
	}
	return &Fanout{pool: pool, m: m, opts: opts, depth: m.JoinDepth(), wake: make(chan struct{}, 1)}
}

// Notify wakes the worker (called after a commit that may have queued a fan-out).
func (f *Fanout) Notify() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// Run works the fan-out queue until ctx is done. Several replicas may run it: each batch
// locks its queue entry (SKIP LOCKED).
func (f *Fanout) Run(ctx context.Context) {
	bo := retryBackoff(fanoutMaxBackoff)
	// requeued counts the rows re-queued since the sinks last caught up, over fan-outs: many
	// small fan-outs (a backfill of the related table) must not flood the log either.
	requeued := 0
	var through Pos
	for ctx.Err() == nil {
		res, err := f.Step(ctx)
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return
			}
			f.opts.Log.WithError(err).Warn("relationship fan-out failed; retrying")
			sleep(ctx, bo.NextBackOff())
			continue
		case res.Idle:
			bo.Reset()
			select {
			case <-ctx.Done():
				return
			case <-f.wake:
			case <-time.After(fanoutPoll):
			}
			continue
		}
		bo.Reset()
		requeued += res.Requeued
		if through.Less(res.Through) {
			through = res.Through
		}
		if requeued >= f.opts.BatchSize {
			f.waitDelivered(ctx, through)
			requeued = 0
		}
	}
}

// StepResult says what one Step did.
type StepResult struct {
	// Idle: the queue held nothing to do.
	Idle bool
	// Requeued is the number of linking rows re-queued.
	Requeued int
	// More: the fan-out this step worked on has more linking rows.
	More bool
	// Through is the log position of the last row re-queued.
	Through Pos
}

// fanoutPruneSQL removes, a thousand at a time, queue entries of rows nothing links to (a
// backfill of a related table queues one per row): one statement instead of a step each. Like
// a step, it runs after the commit that queued them, so a link committed since is seen.
const fanoutPruneSQL = `DELETE FROM appwrite_sync.ledger_fanout f
    WHERE f.id = ANY (ARRAY(SELECT id FROM appwrite_sync.ledger_fanout WHERE after_table IS NULL ORDER BY id LIMIT 1000 FOR UPDATE SKIP LOCKED))
      AND NOT EXISTS (SELECT 1 FROM appwrite_sync.ledger_links k WHERE k.to_table = f.table_key AND k.to_id = f.row_id)`

// fanoutNextSQL takes the oldest queue entry no other worker holds.
const fanoutNextSQL = `SELECT id, table_key, row_id, depth, COALESCE(after_table, ''), COALESCE(after_id, '')
    FROM appwrite_sync.ledger_fanout ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED`

// fanoutLinkingSQL reads the next rows linking to a row, in key order after the entry's
// position (the ledger_links_to index).
const fanoutLinkingSQL = `SELECT DISTINCT from_table, from_id FROM appwrite_sync.ledger_links
    WHERE to_table = $1 AND to_id = $2 AND (from_table, from_id) > ($3, $4)
    ORDER BY from_table, from_id LIMIT $5`

// fanoutRequeueSQL moves live linking rows to the end of the delivery log: a new (tx, seq),
// as a new version would get, with the version itself ($updatedAt, op, hash, source) kept.
const fanoutRequeueSQL = `UPDATE appwrite_sync.ledger l SET seq = nextval('appwrite_sync.version_seq'), tx = pg_current_xact_id()
    FROM unnest($1::text[], $2::text[]) AS d(t, id)
    WHERE l.table_key = d.t AND l.row_id = d.id AND l.op = 1
    RETURNING l.table_key, l.row_id, l.tx::text::bigint, l.seq`

// Step works one batch of the oldest fan-out in one transaction: it re-queues up to
// BatchSize rows linking to the entry's row, queues the fan-out of those that other rows link
// to in turn (chains, up to the mapping's JoinDepth), and moves the entry past them, or
// removes it when none are left. A crash before the commit leaves the entry where it was.
func (f *Fanout) Step(ctx context.Context) (StepResult, error) {
	var res StepResult
	for attempt := 0; ; attempt++ {
		res = StepResult{}
		err := pgx.BeginFunc(ctx, f.pool, func(tx pgx.Tx) error { return f.step(ctx, tx, &res) })
		if err == nil {
			break
		}
		if attempt < 2 && retryGroup[pgerr.Code(err)] {
			continue // a deadlock with a recording group: nothing of it committed
		}
		return StepResult{}, fmt.Errorf("relationship fan-out: %w", err)
	}
	if res.Requeued > 0 {
		if m := f.opts.Metrics; m != nil {
			m.FanoutRequeued.Add(float64(res.Requeued))
		}
		if f.opts.Notify != nil {
			f.opts.Notify()
		}
	}
	return res, nil
}

func (f *Fanout) step(ctx context.Context, tx pgx.Tx, res *StepResult) error {
	var id int64
	var table, row, afterT, afterID string
	var depth int
	if _, err := tx.Exec(ctx, fanoutPruneSQL); err != nil {
		return err
	}
	err := tx.QueryRow(ctx, fanoutNextSQL).Scan(&id, &table, &row, &depth, &afterT, &afterID)
	if errors.Is(err, pgx.ErrNoRows) {
		res.Idle = true
		return nil
	}
	if err != nil {
		return err
	}
	rows, err := tx.Query(ctx, fanoutLinkingSQL, table, row, afterT, afterID, f.opts.BatchSize)
	if err != nil {
		return err
	}
	var ts, ids []string
	for rows.Next() {
		var t, i string
		if err := rows.Scan(&t, &i); err != nil {
			rows.Close()
			return err
		}
		ts, ids = append(ts, t), append(ids, i)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(ts) > 0 {
		if err := f.requeue(ctx, tx, ts, ids, depth, res); err != nil {
			return err
		}
	}
	if len(ts) < f.opts.BatchSize {
		_, err = tx.Exec(ctx, `DELETE FROM appwrite_sync.ledger_fanout WHERE id = $1`, id)
		return err
	}
	res.More = true
	_, err = tx.Exec(ctx, `UPDATE appwrite_sync.ledger_fanout SET after_table = $2, after_id = $3 WHERE id = $1`,
		id, ts[len(ts)-1], ids[len(ids)-1])
	return err
}

// requeue re-queues the linking rows ts/ids of a fan-out at depth, and queues the next
// level of a chain for those that are linked to themselves.
func (f *Fanout) requeue(ctx context.Context, tx pgx.Tx, ts, ids []string, depth int, res *StepResult) error {
	rows, err := tx.Query(ctx, fanoutRequeueSQL, ts, ids)
	if err != nil {
		return err
	}
	var next struct {
		t, id []string
		depth []int32
	}
	related := map[string]bool{}
	for rows.Next() {
		var t, i string
		var p Pos
		var txid int64
		if err := rows.Scan(&t, &i, &txid, &p.Seq); err != nil {
			rows.Close()
			return err
		}
		p.Tx = uint64(txid)
		res.Requeued++
		if res.Through.Less(p) {
			res.Through = p
		}
		if depth+1 >= f.depth {
			continue
		}
		rel, ok := related[t]
		if !ok {
			if k, err := connector.ParseTableKey(t); err == nil {
				rel = f.m.IsRelated(k)
			}
			related[t] = rel
		}
		if rel {
			next.t, next.id, next.depth = append(next.t, t), append(next.id, i), append(next.depth, int32(depth+1))
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(next.t) > 0 {
		if _, err := tx.Exec(ctx, enqueueFanoutSQL, next.t, next.id, next.depth); err != nil {
			return err
		}
	}
	return nil
}

// waitDelivered waits until every sink's cursor passed through, or fanoutCatchUp passed.
func (f *Fanout) waitDelivered(ctx context.Context, through Pos) {
	if len(f.opts.Sinks) == 0 {
		return
	}
	deadline := time.Now().Add(fanoutCatchUp)
	for time.Now().Before(deadline) {
		var behind int
		err := f.pool.QueryRow(ctx, `SELECT count(*) FROM appwrite_sync.sink_cursor
            WHERE sink = ANY($1) AND (tx, seq) < ($2::text::xid8, $3::bigint)`, f.opts.Sinks, fmt.Sprint(through.Tx), through.Seq).Scan(&behind)
		if err != nil || behind == 0 {
			return
		}
		if !sleep(ctx, 20*time.Millisecond) {
			return
		}
	}
}

// FanoutQueued counts the fan-outs not finished (for status and the queue gauge).
func (a *Admin) FanoutQueued(ctx context.Context) (int64, error) {
	var n int64
	if err := a.pool.QueryRow(ctx, `SELECT count(*) FROM appwrite_sync.ledger_fanout`).Scan(&n); err != nil {
		return 0, fmt.Errorf("counting fan-outs: %w", err)
	}
	return n, nil
}
