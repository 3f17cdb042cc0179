package ledger

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/sirupsen/logrus"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/connector/metrics"
	"github.com/appwrite-sync/appwrite-sync/internal/cooldown"
	"github.com/appwrite-sync/appwrite-sync/internal/defaults"
	"github.com/appwrite-sync/appwrite-sync/internal/groupcommit"
	"github.com/appwrite-sync/appwrite-sync/internal/pgerr"
	"github.com/appwrite-sync/appwrite-sync/mapping"
)

// Result says what recording did with a change.
type Result int

const (
	// Recorded: the change is the newest version of its row and is queued for the sinks.
	Recorded Result = iota
	// Stale: the ledger already holds a newer version; nothing changed.
	Stale
	// Duplicate: the ledger already holds this exact version; nothing changed.
	Duplicate
)

func (r Result) String() string { return [...]string{"recorded", "stale", "duplicate"}[r] }

// Defaults of RecorderOptions (state.group_commit_wait, state.group_commit_max).
const (
	// MaxWaitDefault is the MaxWait serve runs with: a millisecond of latency buys groups of
	// tens of changes per transaction under load.
	MaxWaitDefault = time.Millisecond
	// MaxBatchDefault is MaxBatch when unset.
	MaxBatchDefault = 512
)

// RecorderOptions configures group commit.
type RecorderOptions struct {
	// MaxWait is how long the first change of a group waits for company when a committer is
	// free; 0 (the zero value) waits not at all, so a group goes to a free committer at once.
	// Changes gather into the next group anyway while every committer is busy. Serve's
	// default is MaxWaitDefault.
	MaxWait time.Duration
	// MaxBatch bounds a group. Default MaxBatchDefault.
	MaxBatch int
	// Committers is the number of group transactions in flight at once (default 2). While all
	// of them are busy, arriving changes gather into the next group.
	Committers int
	Metrics    *metrics.Metrics
	Log        *logrus.Entry
	// Notify is called after each commit that queued work (wakes the delivery engine).
	Notify func()
	// History says which tables keep every version (postgres.history) and for how long; nil:
	// none does. See history.go.
	History func(connector.TableKey) (HistoryPolicy, bool)
	// Relations, when its tables declare relationships, makes each group also record the
	// links of its rows and queue the fan-out of rows others link to (links.go).
	Relations *mapping.Mapping
	// AuditNotify is called after each commit that recorded audit log entries (Change.Audit):
	// it wakes the audit log's delivery.
	AuditNotify func()
}

// Recorder records changes with group commit.
type Recorder struct {
	pool *pgxpool.Pool
	opts RecorderOptions
	in   *groupcommit.Group[*request]
	// groupMean is a moving average of the webhook groups' sizes in 1/256ths, groupAt the
	// time of the last group (UnixNano); written by the group's loop only. See Saturated.
	groupMean, groupAt atomic.Int64
	// readDups: per table key, whether its last group of reads held duplicates (probeReads).
	dupsMu   sync.Mutex
	readDups map[string]bool
	// copyPause: per table key, groups still to record by statement after a COPY conflict
	// (copyrecord.go).
	copyPause *cooldown.Counter[string]
	// copied counts the groups recorded by COPY, copyHeld those not copied because a sampled
	// row was held (tests read them).
	copied, copyHeld atomic.Int64
}

// saturatedGroup: while webhook groups average this many changes or more, changes arrive much
// faster than one commit takes (a few per group at 2,000 a second on an idle machine, about
// twenty when ingest takes all of it).
const saturatedGroup = 10

// Saturated reports whether ingest is what keeps the state store busy: the recent webhook
// groups were large, and the last one is less than 100 ms old. Delivery then writes larger
// batches (EngineOptions.Busy).
func (r *Recorder) Saturated() bool {
	return r.groupMean.Load() >= saturatedGroup*256 && time.Since(time.Unix(0, r.groupAt.Load())) < 100*time.Millisecond
}

// observeGroup folds a group's size into groupMean (weight 1/8: it follows a change of load
// within a few dozen groups, a few tens of milliseconds under load).
func (r *Recorder) observeGroup(n int) {
	old := r.groupMean.Load()
	r.groupMean.Store(old - old/8 + int64(n)*256/8)
	r.groupAt.Store(time.Now().UnixNano())
}

type request struct {
	ch     connector.Change
	table  string // ch.Key.String(), once: the group's map, sort and arrays all use it
	hash   []byte
	result Result
	err    error
}

// NewRecorder starts the committers. Call Close to stop them.
func NewRecorder(pool *pgxpool.Pool, opts RecorderOptions) *Recorder {
	defaults.Positive(&opts.MaxBatch, MaxBatchDefault)
	defaults.Positive(&opts.Committers, 2)
	defaults.Log(&opts.Log)
	r := &Recorder{pool: pool, opts: opts, readDups: map[string]bool{}, copyPause: cooldown.New[string](copyPauseGroups)}
	// A group waits MaxWait for company after its first change, and then keeps gathering for
	// as long as every committer is busy: a larger group costs Postgres less per change.
	r.in = groupcommit.New(groupcommit.Options[*request]{Commit: r.commit, Refused: ErrUnavailable,
		MaxWait: opts.MaxWait, MaxBatch: opts.MaxBatch, Committers: opts.Committers, Timeout: 10 * time.Second,
		Observe: r.observeGroup})
	return r
}

// Close stops the committers after the changes already handed to them are committed.
func (r *Recorder) Close() {
	r.in.Close()
}

// Record durably stores one change and returns only after its transaction committed.
func (r *Recorder) Record(ctx context.Context, ch connector.Change) error {
	_, err := r.RecordResult(ctx, ch)
	return err
}

// RecordResult is Record that also says whether the change advanced its row.
func (r *Recorder) RecordResult(ctx context.Context, ch connector.Change) (Result, error) {
	req, err := newRequest(ch)
	if err != nil {
		return 0, connector.Permanent("row cannot be hashed", err)
	}
	if err := r.in.Do(ctx, req); err != nil {
		// Refused, the group may still commit it; the caller answers non-2xx, which is safe:
		// Appwrite would not retry, but reconcile or the version guard make a later re-send
		// harmless.
		return 0, err
	}
	return req.result, req.err
}

// newRequest prepares ch for a group; the error is the row's hash failing.
func newRequest(ch connector.Change) (*request, error) {
	hash := ch.Hash // the webhook decoder computed it already
	if hash == nil {
		var err error
		if hash, err = connector.ContentHash(ch.Row); err != nil {
			return nil, err
		}
	}
	return &request{ch: ch, table: ch.Key.String(), hash: hash}, nil
}

// RecordBatch records many changes in one transaction (backfill pages). It returns the
// result per change.
func (r *Recorder) RecordBatch(ctx context.Context, chs []connector.Change) ([]Result, error) {
	reqs := make([]*request, len(chs))
	for i, ch := range chs {
		req, err := newRequest(ch)
		if err != nil {
			return nil, connector.Permanent(fmt.Sprintf("row %s cannot be hashed", ch.RowID), err)
		}
		reqs[i] = req
	}
	if err := r.commit(ctx, reqs); err != nil {
		return nil, err
	}
	out := make([]Result, len(reqs))
	for i, q := range reqs {
		if q.err != nil {
			return nil, fmt.Errorf("row %s: %w", q.ch.RowID, q.err)
		}
		out[i] = q.result
	}
	return out, nil
}

// recordSQL upserts a group's changes and returns the rows it wrote, with whether their
// version advanced (a version read from the REST API only confirming the held version
// rewrites the row in place, keeping its place in the delivery log: the sinks have it). It
// does not join the input back to the result to return every row with the version that beat
// the others: Postgres would materialise the input (each 1 KiB row copied once more), sort
// both sides and merge-join them, for rows that nearly always all advance. The few that do
// not are looked up afterwards (lostSQL).
//
// The first condition of the SELECT's WHERE is the tombstone horizon (see the package
// documentation). A webhook upsert newer than every table's horizon passes on the newest
// horizon, read once per statement (an uncorrelated scalar subquery: an InitPlan over
// ledger_horizon, a table of one row per swept table); that is nearly every upsert, as a
// horizon stays at least the tombstone retention behind. Only an older one probes its own
// table's horizon, and the probe of the ledger behind that runs only for an upsert at or
// before it, next to never. These two are scalar subqueries, probed per row through the
// primary keys: written as EXISTS, the ledger's was planned as a hashed subplan, a scan of the
// whole ledger for the first such upsert of every group. Every webhook upsert used to probe
// ledger_horizon's primary key (two buffer hits a change): about 1 µs of Postgres CPU per
// change, of the statement's 13–17 µs for groups of 28 1 KiB rows (0–3 µs in alternating runs
// on a loaded machine). All three read the statement's snapshot, so the shortcut refuses
// exactly what the probe refuses.
//
// The second, when $10 is true, leaves out a version read from the REST API that the ledger
// already holds as read (a reconcile or a repeated backfill of unchanged rows, nearly every row
// of it): ON CONFLICT DO UPDATE locks the held row before its WHERE refuses the update, and
// the lock dirties the row's page and writes WAL (a whole page after each checkpoint) for a
// row that does not change. The probe is one more primary-key look-up per read, and it halved
// a first backfill's rate end to end (BENCHMARKS.md), so the recorder asks for it only while
// the table's previous group of reads held duplicates (readDups): a repeated backfill locks
// the rows of the pages it hands over before its first page's answer (the backfill's
// RecordAhead, four), a first backfill never probes. Webhooks never probe.
//
// The WHERE of the update is the version guard: a newer ($updatedAt, op) wins; at the same
// ($updatedAt, op) a different content wins when it was read from the REST API (the newer
// truth, also over an earlier read), loses to a held read when it came by webhook, and
// between webhooks the greater content hash wins. The same content read from the REST API
// marks the held version authoritative.
const recordSQL = `
INSERT INTO appwrite_sync.ledger AS l (table_key, row_id, seq, tx, updated_at, op, hash, sequence, action, source, authoritative)
SELECT table_key, row_id, nextval('appwrite_sync.version_seq'), pg_current_xact_id(), updated_at, op, hash, sequence, action, source, authoritative
FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::smallint[], $5::bytea[], $6::text[], $7::text[], $8::text[], $9::bool[])
    AS t(table_key, row_id, updated_at, op, hash, sequence, action, source, authoritative)
WHERE (t.op = 2 OR t.authoritative
        OR t.updated_at > (SELECT COALESCE(max(h.updated_at), '-infinity') FROM appwrite_sync.ledger_horizon h)
        OR t.updated_at > COALESCE((SELECT h.updated_at FROM appwrite_sync.ledger_horizon h WHERE h.table_key = t.table_key), '-infinity')
        OR COALESCE((SELECT true FROM appwrite_sync.ledger k WHERE k.table_key = t.table_key AND k.row_id = t.row_id), false))
    AND NOT ($10::bool AND t.authoritative AND COALESCE((SELECT k.authoritative FROM appwrite_sync.ledger k
        WHERE k.table_key = t.table_key AND k.row_id = t.row_id AND k.updated_at = t.updated_at AND k.op = t.op AND k.hash = t.hash), false))
-- a new version gets a new (tx, seq): it moves to the end of the delivery log
ON CONFLICT (table_key, row_id) DO UPDATE
    SET seq = CASE WHEN l.hash = excluded.hash AND l.updated_at = excluded.updated_at AND l.op = excluded.op THEN l.seq ELSE excluded.seq END,
        tx = CASE WHEN l.hash = excluded.hash AND l.updated_at = excluded.updated_at AND l.op = excluded.op THEN l.tx ELSE excluded.tx END,
        updated_at = excluded.updated_at, op = excluded.op, hash = excluded.hash,
        sequence = excluded.sequence, action = excluded.action, source = excluded.source, row = NULL, recorded_at = now(),
        authoritative = excluded.authoritative,
        tie = (l.updated_at = excluded.updated_at AND l.op = excluded.op AND l.hash <> excluded.hash)
    WHERE (l.updated_at, l.op) < (excluded.updated_at, excluded.op)
        OR ((l.updated_at, l.op) = (excluded.updated_at, excluded.op) AND CASE
            WHEN l.hash = excluded.hash THEN excluded.authoritative AND NOT l.authoritative
            WHEN excluded.authoritative THEN true
            WHEN l.authoritative THEN false
            ELSE l.hash < excluded.hash END)
RETURNING l.table_key, l.row_id, l.tie, l.tx = pg_current_xact_id()`

// lostSQL reads the versions that beat or equalled the changes a group did not advance, to
// tell stale from duplicate and count lost tie-breaks.
const lostSQL = `
SELECT l.table_key, l.row_id, l.updated_at, l.op, l.hash
FROM unnest($1::text[], $2::text[]) AS t(table_key, row_id)
JOIN appwrite_sync.ledger l ON l.table_key = t.table_key AND l.row_id = t.row_id`

// retryGroup: errors after which a group is tried again at once (nothing of it committed).
var retryGroup = map[string]bool{
	pgerrcode.DeadlockDetected:        true, // between replicas' groups
	pgerrcode.SerializationFailure:    true,
	pgerrcode.InvalidSQLStatementName: true, // the prepared statement is gone (see execRecord)
	pgerrcode.FeatureNotSupported:     true, // cached plan must not change result type: a migration changed the ledger
}

// recordStmt names recordSQL's prepared statement on each state store connection.
const recordStmt = "appwrite_sync_record"

// recordFormats: every recordSQL parameter is sent in binary.
var recordFormats = []int16{1}

// recordParams encodes a group's columns as recordSQL's nine array parameters, in one buffer
// sized up front (see pgbinary.go).
func recordParams(tk, ids []string, uas []time.Time, ops []int16, hashes, seqs [][]byte, acts []string, rows [][]byte, auth []bool, probe bool) [][]byte {
	n := len(tk)
	size := 9*arrayHeaderLen + 9*4*n + n*(8+2+1) + 1
	for i := range n {
		size += len(tk[i]) + len(ids[i]) + len(hashes[i]) + len(seqs[i]) + len(acts[i]) + len(rows[i])
	}
	p := newParams(size, 10)
	p.addVersions(tk, ids, uas, ops, hashes)
	p.add(appendBytesArray(p.buf, oidText, seqs))
	p.add(appendTextArray(p.buf, oidText, acts))
	p.add(appendBytesArray(p.buf, oidText, rows))
	p.add(appendBoolArray(p.buf, auth))
	b := byte(0)
	if probe {
		b = 1
	}
	p.add(append(p.buf, b)) // $10, a scalar bool
	return p.out
}

// execRecord runs recordSQL, prepared once per connection, with params already encoded, and
// calls row for each row it returns (text format). One statement is its own transaction: no
// BEGIN/COMMIT round trips; the error includes the implicit commit's.
//
// hist, when not nil, is the group's history insert (history.go), and aud its audit log insert
// (audit.go): they run first, in the same transaction (one round trip, one commit), and note
// what they wrote in hist and aud. When then is not nil (a group with relationships, see
// links.go) the statements and then share an explicit transaction.
func (r *Recorder) execRecord(ctx context.Context, params [][]byte, hist *historyGroup, aud *auditGroup, row func(vals [][]byte) error, then func(context.Context, *pgx.Conn) error) error {
	c, err := r.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer c.Release()
	sd, err := c.Conn().Prepare(ctx, recordStmt, recordSQL)
	if err != nil {
		return err
	}
	run := func() error {
		if hist != nil || aud != nil {
			return r.execPipeline(ctx, c.Conn(), sd, params, hist, aud, row)
		}
		return r.execPrepared(ctx, c, sd, params, row)
	}
	if then != nil {
		return inTx(ctx, c.Conn(), func() error {
			if err := run(); err != nil {
				return err
			}
			return then(ctx, c.Conn())
		})
	}
	return run()
}

// execPrepared runs the prepared record statement on c.
func (r *Recorder) execPrepared(ctx context.Context, c *pgxpool.Conn, sd *pgconn.StatementDescription, params [][]byte, row func(vals [][]byte) error) error {
	rr := c.Conn().PgConn().ExecStatement(ctx, sd, params, recordFormats, nil)
	var rowErr error
	for rr.NextRow() {
		if rowErr == nil {
			rowErr = row(rr.Values())
		}
	}
	if _, err := rr.Close(); err != nil {
		forgetStatements(ctx, c.Conn(), recordStmt)
		return err
	}
	return rowErr
}

// forgetStatements deallocates the named prepared statements after an error, as pgx does with
// its own statement cache, so the next use prepares them again: a statement may have been
// dropped behind pgx's back (DEALLOCATE by a pooler such as PgBouncer) or invalidated by a
// migration ("cached plan must not change result type"). A connection that cannot deallocate
// is closed, and the pool then drops it.
func forgetStatements(ctx context.Context, conn *pgx.Conn, names ...string) {
	for _, name := range names {
		if err := conn.Deallocate(ctx, name); err != nil {
			conn.PgConn().Close(ctx)
			return
		}
	}
}

// rowKey is a ledger row's key as the record statement takes and returns it.
type rowKey struct{ table, id string }

// commit runs one group transaction and fills each request's result.
func (r *Recorder) commit(ctx context.Context, reqs []*request) error {
	// Within a group, keep only the newest version per row (one statement cannot touch a row
	// twice); the others are stale or duplicates of it.
	best := make(map[rowKey]*request, len(reqs))
	for _, q := range reqs {
		k := rowKey{q.table, q.ch.RowID}
		if b, ok := best[k]; ok {
			switch c := supersedes(q, b); {
			case c > 0:
				b.result = Stale
				best[k] = q
			case c == 0 && q.ch.Authoritative && !b.ch.Authoritative:
				b.result = Duplicate // q confirms it
				best[k] = q
			case c == 0:
				q.result = Duplicate
			default:
				q.result = Stale
			}
			continue
		}
		best[k] = q
	}
	winners := make([]*request, 0, len(best))
	for _, q := range best {
		winners = append(winners, q)
	}
	// A fixed lock order avoids deadlocks between concurrent groups.
	sort.Slice(winners, func(i, j int) bool {
		a, b := winners[i], winners[j]
		if a.table != b.table {
			return a.table < b.table
		}
		return a.ch.RowID < b.ch.RowID
	})
	hist := r.historyOf(reqs)
	aud := auditOf(reqs)
	written := make([]bool, len(winners)) // the statement returned the row: advanced, or confirmed (Duplicate)
	links := r.linkWork(winners, written)
	if r.copyable(winners, hist, aud, links) {
		conflict, err := r.copyRecord(ctx, winners)
		if err == nil && !conflict {
			for _, q := range winners {
				q.result = Recorded
			}
			r.finish(reqs, winners, true, hist, aud)
			return nil
		}
		if err != nil {
			// COPY only saves work: the record statement decides whether the state store is
			// unavailable.
			r.opts.Log.WithError(err).Debug("recording a group by COPY failed; recording it by statement")
		}
	}
	n := len(winners)
	tk, ids, acts, seqs := make([]string, n), make([]string, n), make([]string, n), make([][]byte, n)
	uas, ops, hashes, rows := make([]time.Time, n), make([]int16, n), make([][]byte, n), make([][]byte, n)
	auth := make([]bool, n)
	idx := make(map[rowKey]int, n)
	queued := false
	for i, q := range winners {
		tk[i], ids[i], uas[i], ops[i], hashes[i], acts[i] = q.table, q.ch.RowID, q.ch.UpdatedAt, int16(q.ch.Op), q.hash, q.ch.Action
		auth[i] = q.ch.Authoritative
		if q.ch.Sequence != "" {
			seqs[i] = []byte(q.ch.Sequence) // nil: NULL
		}
		rows[i] = q.ch.Row
		idx[rowKey{tk[i], ids[i]}] = i
	}
	params := recordParams(tk, ids, uas, ops, hashes, seqs, acts, rows, auth, r.probeReads(winners))
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		clear(written)
		queued = false
		hist.reset()
		aud.reset()
		err = r.execRecord(ctx, params, hist, aud, func(vals [][]byte) error {
			if len(vals) != 4 {
				return fmt.Errorf("record statement returned %d columns, want 4", len(vals))
			}
			i, ok := idx[rowKey{string(vals[0]), string(vals[1])}]
			if !ok {
				return fmt.Errorf("record statement returned a row it was not given: %s/%s", vals[0], vals[1])
			}
			written[i] = true
			if string(vals[3]) != "t" {
				winners[i].result = Duplicate // a read confirmed the version the ledger held
				return nil
			}
			winners[i].result = Recorded
			queued = true
			if string(vals[2]) == "t" && r.opts.Metrics != nil {
				r.opts.Metrics.Ties.WithLabelValues(tk[i]).Inc()
			}
			return nil
		}, links)
		if retryGroup[pgerr.Code(err)] {
			continue
		}
		break
	}
	if err != nil {
		if pgerr.IsData(err) { // what one of its changes holds, not the state store's state
			return r.commitAlone(ctx, reqs, err)
		}
		r.opts.Log.WithError(err).Warn("ledger commit failed")
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	r.classifyLost(ctx, winners, written, idx)
	r.finish(reqs, winners, queued, hist, aud)
	return nil
}

// finish does what follows a group's commit: remember whether its reads held duplicates,
// count, and wake delivery (queued: the group advanced a row) and the audit log's delivery.
func (r *Recorder) finish(reqs, winners []*request, queued bool, hist *historyGroup, aud *auditGroup) {
	r.noteReadDups(winners)
	if m := r.opts.Metrics; m != nil {
		m.GroupCommitSize.Observe(float64(len(reqs)))
		for _, q := range reqs {
			m.Changes.WithLabelValues(q.table, q.result.String()).Inc()
		}
	}
	hist.count(r.opts.Metrics)
	aud.count(r.opts.Metrics)
	if (queued || hist.keptAny()) && r.opts.Notify != nil {
		r.opts.Notify()
	}
	if aud.insertedAny() && r.opts.AuditNotify != nil {
		r.opts.AuditNotify()
	}
}

// commitAlone records the changes of a group the state store refused because of its data,
// each in a statement of its own, as if each had come alone: the one it refuses again gets a
// permanent error (the webhook handler quarantines it), and does not take the others down
// with it. The decoder turns away the inputs known to do this (invalid UTF-8, over-long
// ids); this is for whatever it misses.
func (r *Recorder) commitAlone(ctx context.Context, reqs []*request, groupErr error) error {
	if len(reqs) == 1 {
		reqs[0].err = connector.Permanent("the state store refused the change", groupErr)
		r.opts.Log.WithError(groupErr).WithField("row", fmt.Sprintf("%s/%.200s", reqs[0].table, reqs[0].ch.RowID)).Warn("the state store refused a change")
		return nil
	}
	for _, q := range reqs {
		if err := r.commit(ctx, []*request{q}); err != nil {
			q.err = err
		}
	}
	return nil
}

// classifyLost sets the result of the winners the statement did not write: Duplicate when
// the ledger holds this exact version, else Stale (a different content at the same instant
// lost the tie-break, counted; or, when the ledger holds no version at all, the change was
// below the tombstone horizon, counted). The group has committed, so another change may have
// advanced such a row since; it then counts as stale, which it is by now. Only the metrics and
// the backfill's counts read this, so a failed look-up leaves them Stale and does not fail the
// group.
func (r *Recorder) classifyLost(ctx context.Context, winners []*request, written []bool, idx map[rowKey]int) {
	var tk, ids []string
	for i, q := range winners {
		if !written[i] {
			q.result = Stale
			tk, ids = append(tk, q.table), append(ids, q.ch.RowID)
		}
	}
	if len(tk) == 0 {
		return
	}
	// Planned for each run (the unnamed statement), never from a plan the connection cached:
	// one made while the ledger was small joins it with a full scan, and a backfill over rows
	// the ledger already holds runs this for nearly every page.
	failed := func(err error) { r.opts.Log.WithError(err).Warn("reading the versions that beat recorded changes") }
	rs, err := r.pool.Query(ctx, lostSQL, pgx.QueryExecModeExec, tk, ids)
	if err != nil {
		failed(err)
		return
	}
	defer rs.Close()
	found := make(map[int]bool, len(tk))
	for rs.Next() {
		var t, id string
		var ua time.Time
		var op int16
		var hash []byte
		if err := rs.Scan(&t, &id, &ua, &op, &hash); err != nil {
			failed(err)
			return
		}
		i := idx[rowKey{t, id}]
		found[i] = true
		q := winners[i]
		if ua.Equal(q.ch.UpdatedAt) && connector.Op(op) == q.ch.Op {
			if bytes.Equal(hash, q.hash) {
				q.result = Duplicate
			} else if r.opts.Metrics != nil {
				r.opts.Metrics.Ties.WithLabelValues(t).Inc() // lost the tie-break
			}
		}
	}
	if err := rs.Err(); err != nil {
		failed(err)
		return
	}
	for i, q := range winners {
		if !written[i] && !found[i] {
			if r.opts.Metrics != nil {
				r.opts.Metrics.BelowHorizon.WithLabelValues(q.table).Inc()
			}
			r.opts.Log.WithFields(logrus.Fields{"table": q.table, "row": fmt.Sprintf("%.200s", q.ch.RowID), "updated_at": q.ch.UpdatedAt}).
				Warn("refused an upsert of a row the ledger does not hold, not newer than the tombstones swept from its table: a replay of a deleted row, or a row written with an old $updatedAt (a reconcile records it)")
		}
	}
}

// probeReads reports whether a group's reads go through the record statement's duplicate
// probe: while the previous group of reads of one of their tables held duplicates.
func (r *Recorder) probeReads(winners []*request) bool {
	r.dupsMu.Lock()
	defer r.dupsMu.Unlock()
	for _, q := range winners {
		if q.ch.Authoritative && r.readDups[q.table] {
			return true
		}
	}
	return false
}

// noteReadDups remembers, per table, whether the group's reads held duplicates.
func (r *Recorder) noteReadDups(winners []*request) {
	r.dupsMu.Lock()
	defer r.dupsMu.Unlock()
	seen := make(map[string]bool, 1)
	for _, q := range winners {
		if !q.ch.Authoritative {
			continue
		}
		if !seen[q.table] {
			seen[q.table] = true
			r.readDups[q.table] = false
		}
		if q.result == Duplicate {
			r.readDups[q.table] = true
		}
	}
}

// supersedes decides between change q and b, the version of the same row it would replace,
// as the record statement does: +1 when q replaces b, 0 when q is the same version, -1 when q
// is stale. The order is ($updatedAt, op); at the same ($updatedAt, op) a different content
// read from the REST API wins (the later read, over an earlier one too), a webhook's never
// displaces a read, and between webhooks the greater content hash wins.
func supersedes(q, b *request) int {
	if c := q.ch.UpdatedAt.Compare(b.ch.UpdatedAt); c != 0 {
		return c
	}
	if q.ch.Op != b.ch.Op {
		if q.ch.Op > b.ch.Op {
			return 1
		}
		return -1
	}
	switch {
	case bytes.Equal(q.hash, b.hash):
		return 0
	case q.ch.Authoritative:
		return 1
	case b.ch.Authoritative:
		return -1
	}
	return bytes.Compare(q.hash, b.hash)
}
