package audit

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/sirupsen/logrus"

	"github.com/appwrite-sync/appwrite-sync/connector/metrics"
	"github.com/appwrite-sync/appwrite-sync/internal/pgerr"
)

// ErrUnavailable means an entry was not recorded: the state store could not commit it (or the
// recorder is shutting down). The webhook is then answered 503.
var ErrUnavailable = errors.New("audit log unavailable")

// MaxBatchDefault bounds a group commit of entries.
const MaxBatchDefault = 256

// commitTimeout bounds one group's statements (as the ledger recorder's).
const commitTimeout = 10 * time.Second

// RecorderOptions configures a Recorder.
type RecorderOptions struct {
	// Matcher selects the deliveries to record. Required.
	Matcher *Matcher
	// MaxBatch bounds a group. Default MaxBatchDefault.
	MaxBatch int
	Metrics  *metrics.Metrics
	Log      *logrus.Entry
	// Notify is called after each commit that appended entries (wakes the delivery).
	Notify func()
}

// Recorder records audit entries in the state store with group commit: entries arriving
// while the committers are busy form the next group. It implements the webhook handler's Auditor.
type Recorder struct {
	pool *pgxpool.Pool
	opts RecorderOptions
	in   chan *request
	done chan struct{}
	stop context.CancelFunc
}

type request struct {
	e     Entry
	dup   bool // already in the log (a byte-identical redelivery)
	err   error
	ready chan struct{}
}

// NewRecorder starts the committer. Call Close to stop it.
func NewRecorder(pool *pgxpool.Pool, opts RecorderOptions) *Recorder {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = MaxBatchDefault
	}
	if opts.Log == nil {
		opts.Log = logrus.NewEntry(logrus.StandardLogger())
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Recorder{pool: pool, opts: opts, in: make(chan *request, opts.MaxBatch), done: make(chan struct{}), stop: cancel}
	go func() { r.loop(ctx); close(r.done) }()
	return r
}

// Close stops the committer after the group in flight; entries still waiting are refused.
func (r *Recorder) Close() {
	r.stop()
	<-r.done
}

// Selects reports whether a delivery with this events header is audited.
func (r *Recorder) Selects(events string) bool { return r.opts.Matcher.Selects(events) }

// Audit records the delivery and returns nil only once its entry (or an identical earlier
// one) is committed.
func (r *Recorder) Audit(ctx context.Context, header http.Header, body []byte, received time.Time) error {
	_, err := r.Record(ctx, NewEntry(header, body, received))
	return err
}

// Record commits e and reports whether it was new (false: a byte-identical entry was already
// in the log).
func (r *Recorder) Record(ctx context.Context, e Entry) (bool, error) {
	q := &request{e: e, ready: make(chan struct{})}
	select {
	case r.in <- q:
	case <-ctx.Done():
		return false, fmt.Errorf("%w: %v", ErrUnavailable, ctx.Err())
	case <-r.done:
		return false, fmt.Errorf("%w: shutting down", ErrUnavailable)
	}
	select {
	case <-q.ready:
		return !q.dup, q.err
	case <-ctx.Done():
		// The group may still commit it: the caller answers non-2xx, which is safe.
		return false, fmt.Errorf("%w: %v", ErrUnavailable, ctx.Err())
	}
}

// committers is the number of groups in flight at once: the next group is sent while one
// commits, and waits at the head's lock (the statement's planning and the jsonb parse of its
// payloads overlap the other's commit).
const committers = 2

// loop gathers groups and hands each to a free committer; while both are busy, arrivals join
// the next group.
func (r *Recorder) loop(ctx context.Context) {
	slots := make(chan struct{}, committers)
	var inflight sync.WaitGroup
	defer inflight.Wait()
	for {
		var batch []*request
		select {
		case q := <-r.in:
			batch = append(batch, q)
		case <-ctx.Done():
			r.drain()
			return
		}
	wait:
		for len(batch) < r.opts.MaxBatch {
			select {
			case slots <- struct{}{}:
				break wait
			case q := <-r.in:
				batch = append(batch, q)
			}
		}
		if len(batch) >= r.opts.MaxBatch {
			slots <- struct{}{}
		}
		inflight.Add(1)
		go func(batch []*request) {
			defer inflight.Done()
			cctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
			err := r.commit(cctx, batch)
			cancel()
			<-slots
			for _, q := range batch {
				if err != nil {
					q.err = err
				}
				close(q.ready)
			}
		}(batch)
	}
}

func (r *Recorder) drain() {
	for {
		select {
		case q := <-r.in:
			q.err = fmt.Errorf("%w: shutting down", ErrUnavailable)
			close(q.ready)
		default:
			return
		}
	}
}

// appendSQL appends a group to the chain in one statement (its own transaction, one round
// trip): it locks the head's row (the chain's single writer; a concurrent group waits, then
// reads the head it left), skips the entries whose digest the log holds already, numbers the
// others after the head, chains them (a recursive CTE: each hash covers the previous one, as
// ChainHash computes it), inserts them and moves the head. It returns the digests it inserted.
// The canonical form is rendered from the values as stored (canonicalSQL). The digest check is
// a scalar subquery, probed per entry through the unique index: written as NOT EXISTS, it was
// planned as an anti join over the whole log while the table's statistics said it was empty,
// and a plan cached then (generic plans) kept scanning it as it grew.
const appendSQL = `
WITH RECURSIVE head AS (SELECT seq, hash FROM appwrite_sync.audit_head WHERE id = 1 FOR UPDATE),
input AS (
    SELECT x.i, x.d AS digest, x.r AS received_at, NULLIF(x.w, '') AS webhook_id, NULLIF(x.p, '') AS project_id,
        NULLIF(x.u, '') AS user_id, string_to_array(x.ev, ',') AS events, x.pl::jsonb AS payload
    FROM unnest($1::bytea[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
        WITH ORDINALITY AS x(d, r, w, p, u, ev, pl, i)
    WHERE COALESCE((SELECT false FROM appwrite_sync.audit_log a WHERE a.digest = x.d), true)),
fresh AS (
    SELECT row_number() OVER (ORDER BY i) AS n, input.*, ` + canonicalFreshSQL + ` AS canonical FROM input),
chain (n, seq, prev_hash, hash) AS (
    SELECT 0::bigint, seq, NULL::text, hash FROM head
    UNION ALL
    SELECT f.n, c.seq + 1, c.hash,
        encode(sha256(convert_to(c.hash || E'\n' || (c.seq + 1)::text || E'\n' || f.canonical, 'UTF8')), 'hex')
    FROM chain c JOIN fresh f ON f.n = c.n + 1),
ins AS (
    INSERT INTO appwrite_sync.audit_log (seq, digest, received_at, webhook_id, project_id, user_id, events, payload, prev_hash, hash)
    SELECT c.seq, f.digest, f.received_at, f.webhook_id, f.project_id, f.user_id, f.events, f.payload, c.prev_hash, c.hash
    FROM chain c JOIN fresh f USING (n)
    RETURNING digest),
moved AS (
    UPDATE appwrite_sync.audit_head h SET seq = last.seq, hash = last.hash
    FROM (SELECT seq, hash FROM chain ORDER BY n DESC LIMIT 1) last
    WHERE h.id = 1 AND last.seq > h.seq)
SELECT digest FROM ins`

// canonicalFreshSQL is canonicalSQL over the input CTE's columns (event: the first element).
const canonicalFreshSQL = `jsonb_build_array(to_char(received_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), ` +
	`webhook_id, project_id, user_id, events, events[1], payload)::text`

// commit records a group: duplicates (within it, or of entries already in the log) are
// answered without a new entry; the rest are chained and appended (appendSQL).
func (r *Recorder) commit(ctx context.Context, reqs []*request) error {
	first := make(map[string]*request, len(reqs))
	var uniq []*request
	for _, q := range reqs {
		if _, seen := first[string(q.e.Digest)]; seen {
			q.dup = true
			continue
		}
		first[string(q.e.Digest)] = q
		uniq = append(uniq, q)
	}
	var inserted map[string]bool
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		inserted, err = r.append(ctx, uniq)
		if pgerr.IsData(err) && !pgerr.IsUniqueViolation(err, "") {
			if r.wrapRefused(ctx, uniq) {
				continue // wrapped: try again
			}
		}
		// A replica appended the same digest at the same time (the loser sees the winner's row
		// only after it committed): look again.
		if pgerr.IsUniqueViolation(err, "") || retryable(err) {
			continue
		}
		break
	}
	if err != nil {
		r.opts.Log.WithError(err).Warn("audit log commit failed")
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	for _, q := range uniq {
		q.dup = !inserted[string(q.e.Digest)]
	}
	if m := r.opts.Metrics; m != nil {
		for _, q := range reqs {
			if q.dup {
				m.AuditEntries.WithLabelValues("duplicate").Inc()
			} else {
				m.AuditEntries.WithLabelValues("recorded").Inc()
			}
		}
	}
	if len(inserted) > 0 && r.opts.Notify != nil {
		r.opts.Notify()
	}
	return nil
}

func retryable(err error) bool {
	c := pgerr.Code(err)
	return c == pgerrcode.SerializationFailure || c == pgerrcode.DeadlockDetected
}

// wrapRefused finds the payloads jsonb refuses (what json.Valid lets through: a \u0000
// escape, a lone surrogate) and wraps them (BodyWrapped); false when none was refused (the
// error is not the payloads').
func (r *Recorder) wrapRefused(ctx context.Context, reqs []*request) bool {
	wrapped := false
	for _, q := range reqs {
		var ok bool
		err := r.pool.QueryRow(ctx, `SELECT $1::text::jsonb IS NOT NULL`, string(q.e.Payload)).Scan(&ok)
		if pgerr.IsData(err) {
			q.e.Payload = BodyWrapped(q.e.Payload)
			wrapped = true
		}
	}
	return wrapped
}

// append runs appendSQL for reqs and returns the digests it inserted.
func (r *Recorder) append(ctx context.Context, reqs []*request) (map[string]bool, error) {
	n := len(reqs)
	d, ra := make([][]byte, n), make([]time.Time, n)
	w, p, u, ev, pl := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	for i, q := range reqs {
		d[i], ra[i], w[i], p[i], u[i], ev[i], pl[i] = q.e.Digest, q.e.ReceivedAt, q.e.WebhookID, q.e.ProjectID, q.e.UserID, q.e.Events, string(q.e.Payload)
	}
	rows, err := r.pool.Query(ctx, appendSQL, d, ra, w, p, u, ev, pl)
	if err != nil {
		return nil, err
	}
	inserted := make(map[string]bool, n)
	for rows.Next() {
		var dg []byte
		if err := rows.Scan(&dg); err != nil {
			rows.Close()
			return nil, err
		}
		inserted[string(dg)] = true
	}
	return inserted, rows.Err()
}
