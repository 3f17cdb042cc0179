package audit

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
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
// while a group commits form the next group. It implements the webhook handler's Auditor.
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

// loop gathers a group from what is waiting and commits it; one group at a time, since the
// chain's lock serialises them anyway.
func (r *Recorder) loop(ctx context.Context) {
	for {
		var batch []*request
		select {
		case q := <-r.in:
			batch = append(batch, q)
		case <-ctx.Done():
			r.drain()
			return
		}
	gather:
		for len(batch) < r.opts.MaxBatch {
			select {
			case q := <-r.in:
				batch = append(batch, q)
			default:
				break gather
			}
		}
		cctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
		err := r.commit(cctx, batch)
		cancel()
		for _, q := range batch {
			if err != nil {
				q.err = err
			}
			close(q.ready)
		}
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

// prepareSQL renders each entry's canonical form (canonicalSQL over the values as they will be
// stored) and says whether its digest is already in the log.
const prepareSQL = `
SELECT ` + canonicalSQL + `, EXISTS (SELECT 1 FROM appwrite_sync.audit_log a WHERE a.digest = t.digest)
FROM (SELECT r AS received_at, NULLIF(w, '') AS webhook_id, NULLIF(p, '') AS project_id, NULLIF(u, '') AS user_id,
        string_to_array(ev, ',') AS events, (string_to_array(ev, ','))[1] AS event, pl::jsonb AS payload, d AS digest, i
    FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bytea[])
        WITH ORDINALITY AS x(r, w, p, u, ev, pl, d, i)) t
ORDER BY i`

const headSQL = `SELECT seq, hash FROM appwrite_sync.audit_head WHERE id = 1 FOR UPDATE`

const insertSQL = `
INSERT INTO appwrite_sync.audit_log (seq, digest, received_at, webhook_id, project_id, user_id, events, payload, prev_hash, hash)
SELECT s, d, r, NULLIF(w, ''), NULLIF(p, ''), NULLIF(u, ''), string_to_array(ev, ','), pl::jsonb, ph, h
FROM unnest($1::bigint[], $2::bytea[], $3::timestamptz[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[])
    AS t(s, d, r, w, p, u, ev, pl, ph, h)`

const moveHeadSQL = `UPDATE appwrite_sync.audit_head SET seq = $1, hash = $2 WHERE id = 1`

// commit records a group: duplicates (within it, or of entries already in the log) are
// answered without a new entry; the rest are chained and appended under the head's lock.
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
	var err error
	appended := false
	for attempt := 0; attempt < 3; attempt++ {
		var fresh []*request
		var canon []string
		fresh, canon, err = r.prepare(ctx, uniq)
		if err != nil || len(fresh) == 0 {
			break
		}
		err = r.append(ctx, fresh, canon)
		// A replica appended the same digest since prepare looked: look again.
		if pgerr.IsUniqueViolation(err, "") || retryable(err) {
			continue
		}
		appended = err == nil
		break
	}
	if err != nil {
		r.opts.Log.WithError(err).Warn("audit log commit failed")
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
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
	if appended && r.opts.Notify != nil {
		r.opts.Notify()
	}
	return nil
}

func retryable(err error) bool {
	c := pgerr.Code(err)
	return c == pgerrcode.SerializationFailure || c == pgerrcode.DeadlockDetected
}

// prepare marks the entries already in the log as duplicates and returns the others with
// their canonical forms. A payload jsonb refuses (what json.Valid lets through: a \u0000
// escape, a lone surrogate) is wrapped (BodyWrapped) and the group prepared again.
func (r *Recorder) prepare(ctx context.Context, reqs []*request) ([]*request, []string, error) {
	for {
		canon, exists, err := r.render(ctx, reqs)
		if pgerr.IsData(err) {
			if !r.wrapRefused(ctx, reqs) {
				return nil, nil, err
			}
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		var fresh []*request
		var fc []string
		for i, q := range reqs {
			q.dup = exists[i]
			if !q.dup {
				fresh, fc = append(fresh, q), append(fc, canon[i])
			}
		}
		return fresh, fc, nil
	}
}

// wrapRefused renders each entry alone and wraps the payloads jsonb refuses; false when none
// was (the error is not the payloads').
func (r *Recorder) wrapRefused(ctx context.Context, reqs []*request) bool {
	wrapped := false
	for _, q := range reqs {
		if _, _, err := r.render(ctx, []*request{q}); pgerr.IsData(err) {
			q.e.Payload = BodyWrapped(q.e.Payload)
			wrapped = true
		}
	}
	return wrapped
}

func (r *Recorder) render(ctx context.Context, reqs []*request) ([]string, []bool, error) {
	n := len(reqs)
	ra, w, p, u, ev, pl, d := make([]time.Time, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([][]byte, n)
	for i, q := range reqs {
		ra[i], w[i], p[i], u[i], ev[i], pl[i], d[i] = q.e.ReceivedAt, q.e.WebhookID, q.e.ProjectID, q.e.UserID, q.e.Events, string(q.e.Payload), q.e.Digest
	}
	rows, err := r.pool.Query(ctx, prepareSQL, ra, w, p, u, ev, pl, d)
	if err != nil {
		return nil, nil, err
	}
	canon, exists := make([]string, 0, n), make([]bool, 0, n)
	for rows.Next() {
		var c string
		var ex bool
		if err := rows.Scan(&c, &ex); err != nil {
			rows.Close()
			return nil, nil, err
		}
		canon, exists = append(canon, c), append(exists, ex)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	if len(canon) != n {
		return nil, nil, fmt.Errorf("rendering audit entries: got %d rows for %d entries", len(canon), n)
	}
	return canon, exists, nil
}

// append chains fresh after the head and inserts them, in one transaction holding the head's
// row lock (the chain's single writer).
func (r *Recorder) append(ctx context.Context, fresh []*request, canon []string) error {
	return pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		var seq int64
		var head string
		if err := tx.QueryRow(ctx, headSQL).Scan(&seq, &head); err != nil {
			return fmt.Errorf("reading the audit log's head: %w", err)
		}
		n := len(fresh)
		ss, d, ra := make([]int64, n), make([][]byte, n), make([]time.Time, n)
		w, p, u, ev, pl, ph, h := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		for i, q := range fresh {
			seq++
			ss[i], ph[i] = seq, head
			head = ChainHash(head, seq, canon[i])
			h[i] = head
			d[i], ra[i], w[i], p[i], u[i], ev[i], pl[i] = q.e.Digest, q.e.ReceivedAt, q.e.WebhookID, q.e.ProjectID, q.e.UserID, q.e.Events, string(q.e.Payload)
		}
		b := &pgx.Batch{}
		b.Queue(insertSQL, ss, d, ra, w, p, u, ev, pl, ph, h)
		b.Queue(moveHeadSQL, seq, head)
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		for i, q := range fresh {
			q.e.Seq, q.e.PrevHash, q.e.Hash = ss[i], ph[i], h[i]
		}
		return nil
	})
}
