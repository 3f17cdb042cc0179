package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/sirupsen/logrus"

	"github.com/appwrite-sync/appwrite-sync/connector/metrics"
	"github.com/appwrite-sync/appwrite-sync/internal/defaults"
	"github.com/appwrite-sync/appwrite-sync/internal/groupcommit"
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
// while the committers are busy form the next group. It implements the webhook handler's
// Auditor: it records the deliveries that are not a row change of a mapped table (users,
// files, ...); the entry of a row change is recorded by the ledger's recorder, in the
// transaction of the change (connector.Change.Audit).
type Recorder struct {
	pool *pgxpool.Pool
	opts RecorderOptions
	in   *groupcommit.Group[*request]
}

type request struct {
	e   Entry
	dup bool // already in the log (a byte-identical redelivery)
}

// NewRecorder starts the committer. Call Close to stop it.
func NewRecorder(pool *pgxpool.Pool, opts RecorderOptions) *Recorder {
	defaults.Positive(&opts.MaxBatch, MaxBatchDefault)
	defaults.Log(&opts.Log)
	r := &Recorder{pool: pool, opts: opts}
	r.in = groupcommit.New(groupcommit.Options[*request]{Commit: r.commit, Refused: ErrUnavailable,
		MaxBatch: opts.MaxBatch, Committers: committers, Backlog: opts.MaxBatch, Timeout: commitTimeout})
	return r
}

// Close stops the committer after the group in flight; entries still waiting are refused.
func (r *Recorder) Close() {
	r.in.Close()
}

// Selects reports whether a delivery with this events header is audited.
func (r *Recorder) Selects(events string) bool { return r.opts.Matcher.Selects(events) }

// Audit records the delivery and returns nil only once its entry (or an identical earlier
// one) is committed.
func (r *Recorder) Audit(ctx context.Context, header http.Header, body []byte, received time.Time) error {
	_, err := r.Record(ctx, NewEntry(header, body, received))
	return err
}

// Entry is the delivery's entry, for the ledger to record with the row change it carries
// (connector.Change.Audit). The body decoded as a row change, so it is one JSON object in valid
// UTF-8 (connector.ContentHash accepts nothing else): only what jsonb refuses beyond that is
// looked for again.
func (r *Recorder) Entry(header http.Header, body []byte, received time.Time) *Entry {
	e := newEntry(header, body, received, true)
	return &e
}

// Record commits e and reports whether it was new (false: a byte-identical entry was already
// in the log).
func (r *Recorder) Record(ctx context.Context, e Entry) (bool, error) {
	q := &request{e: e}
	if err := r.in.Do(ctx, q); err != nil {
		// Refused, the group may still commit it: the caller answers non-2xx, which is safe.
		return false, err
	}
	return !q.dup, nil
}

// committers is the number of groups in flight at once: the next group is sent while one
// commits (groups hold no lock in common, so they commit in parallel).
const committers = 2

// InsertSQL records a group of entries: a plain insert, its own transaction or part of the
// ledger's (package ledger runs it in the implicit transaction of its record statement). The
// entry's tx and seq are the columns' defaults (pg_current_xact_id() and the sequence): they
// order the log, and the delivery chains the entries in that order (see the package
// documentation). An entry whose digest the log holds already is skipped (ON CONFLICT waits for
// a concurrent insert of the same digest to commit or abort, so a redelivery racing its first
// delivery is recorded once either way). Callers pass the entries in digest order, so that two
// groups wait for each other's digests in one order and never deadlock. The events header and
// the body are kept as the text they arrived as: NewEntry checked the body in Go (jsonb parsing
// it here cost more Postgres time than the rest of the insert), and the delivery renders it.
// It returns the digests it inserted.
const InsertSQL = `
INSERT INTO appwrite_sync.audit_log (digest, received_at, webhook_id, project_id, user_id, events, payload)
SELECT x.d, x.r, NULLIF(x.w, ''), NULLIF(x.p, ''), NULLIF(x.u, ''), x.ev, x.pl
FROM unnest($1::bytea[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
    WITH ORDINALITY AS x(d, r, w, p, u, ev, pl, i)
ORDER BY x.i
ON CONFLICT (digest) DO NOTHING
RETURNING digest`

// SortEntries puts a group's entries in InsertSQL's lock order and drops the second of two
// with one digest (one statement cannot insert a digest twice usefully).
func SortEntries(es []*Entry) []*Entry {
	sort.Slice(es, func(i, j int) bool { return bytes.Compare(es[i].Digest, es[j].Digest) < 0 })
	out := es[:0]
	for i, e := range es {
		if i > 0 && bytes.Equal(e.Digest, es[i-1].Digest) {
			continue
		}
		out = append(out, e)
	}
	return out
}

// commit records a group: duplicates (within it, or of entries already in the log) are
// answered without a new entry; the rest are inserted (InsertSQL).
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
	sort.Slice(uniq, func(i, j int) bool { return bytes.Compare(uniq[i].e.Digest, uniq[j].e.Digest) < 0 })
	var inserted map[string]bool
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		inserted, err = r.insert(ctx, uniq)
		if retryable(err) {
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
			CountEntry(m, !q.dup)
		}
	}
	if len(inserted) > 0 && r.opts.Notify != nil {
		r.opts.Notify()
	}
	return nil
}

// CountEntry adds an entry's outcome to appwrite_sync_audit_entries_total.
func CountEntry(m *metrics.Metrics, recorded bool) {
	if recorded {
		m.AuditEntries.WithLabelValues("recorded").Inc()
	} else {
		m.AuditEntries.WithLabelValues("duplicate").Inc()
	}
}

func retryable(err error) bool {
	c := pgerr.Code(err)
	return c == pgerrcode.SerializationFailure || c == pgerrcode.DeadlockDetected
}

// insert runs InsertSQL for reqs and returns the digests it inserted.
func (r *Recorder) insert(ctx context.Context, reqs []*request) (map[string]bool, error) {
	n := len(reqs)
	d, ra := make([][]byte, n), make([]time.Time, n)
	w, p, u, ev, pl := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	for i, q := range reqs {
		d[i], ra[i], w[i], p[i], u[i], ev[i], pl[i] = q.e.Digest, q.e.ReceivedAt, q.e.WebhookID, q.e.ProjectID, q.e.UserID, q.e.Events, string(q.e.Payload)
	}
	rows, err := r.pool.Query(ctx, InsertSQL, d, ra, w, p, u, ev, pl)
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
