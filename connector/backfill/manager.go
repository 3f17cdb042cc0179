package backfill

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/sirupsen/logrus"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/connector/admin"
	"github.com/appwrite-sync/appwrite-sync/connector/appwrite"
	"github.com/appwrite-sync/appwrite-sync/connector/ledger"
	"github.com/appwrite-sync/appwrite-sync/connector/metrics"
	"github.com/appwrite-sync/appwrite-sync/internal/defaults"
	"github.com/appwrite-sync/appwrite-sync/internal/leaseowner"
	"github.com/appwrite-sync/appwrite-sync/internal/periodic"
	"github.com/appwrite-sync/appwrite-sync/mapping"
)

// Defaults of Options. Each applies when the field is left zero, except SkewDefault: a zero
// Skew means no window.
const (
	// LeaseDefault is how long a job stays with a process that stopped renewing it.
	LeaseDefault = 30 * time.Second
	// PollIntervalDefault is how often idle workers look for claimable jobs, and running jobs
	// renew their lease and look for a cancel from another process.
	PollIntervalDefault = time.Second
	// WorkersDefault is how many jobs one process runs at once.
	WorkersDefault = 2
	// ParallelPagesDefault is serve's ParallelPages (appwrite.parallel_pages): list requests a
	// full scan keeps in flight. The zero value of Options.ParallelPages is one at a time.
	ParallelPagesDefault = 4
	// SkewDefault is how far before the watermark an incremental job starts: $updatedAt has
	// millisecond precision, may be set by hand, and the clocks of Appwrite and the state
	// store differ.
	SkewDefault = 5 * time.Minute
	// MaxAttemptsDefault is how many times a job is tried before it fails for good (errors
	// that retrying cannot fix fail it at once).
	MaxAttemptsDefault = 3
	// RetryBackoffDefault is the wait before the second attempt; it doubles after each one.
	RetryBackoffDefault = 30 * time.Second
	// RecordAheadDefault is how many pages of one job are recorded at once (the next page is
	// always fetched meanwhile). Several keep the state store busy while another page's
	// transaction waits for its flush; each costs one page in memory. Four instead of two made
	// a repeated backfill of unchanged rows (a reconcile) 1.03–2× faster and a first one no
	// slower, for 1–3 MiB more peak RSS (BENCHMARKS.md, issue #20).
	RecordAheadDefault = 4
	// RetentionDefault is how long ended jobs stay visible.
	RetentionDefault = 30 * 24 * time.Hour
)

// ActionBackfill is the ledger action of changes recorded by a job.
const ActionBackfill = "backfill"

// appwriteTotalCap is where Appwrite stops counting: a total below it is exact.
const appwriteTotalCap = 5000

// recordTimeout bounds recording one page (it is not cut short when the job stops).
const recordTimeout = time.Minute

// deleteBatch is how many unseen rows a full job turns into deletes per transaction.
const deleteBatch = 1000

// Recorder stores changes in the ledger with its version guard; *ledger.Recorder is one.
type Recorder interface {
	RecordBatch(ctx context.Context, chs []connector.Change) ([]ledger.Result, error)
}

// Options configures a Manager. Client, Recorder and Mapping are required.
type Options struct {
	// Client reads the rows.
	Client *appwrite.Client
	// Recorder records them.
	Recorder Recorder
	// Mapping says which tables may be backfilled (and which relationship columns to ask for).
	Mapping *mapping.Mapping
	// PageSize is the rows per request; 0 uses the client's (appwrite.page_size).
	PageSize int
	// ParallelPages is how many list requests a full scan keeps in flight (numeric $sequence
	// only; see appwrite.Client.ScanParallel). 0 or 1: one at a time.
	ParallelPages int
	// Owner names this process in leases. Default: leaseowner.New (host name, pid and a random
	// suffix).
	Owner string
	// Skew is subtracted from the watermark by incremental jobs; 0 (the zero value): no
	// window. Serve's default is SkewDefault (reconcile.skew).
	Skew time.Duration
	// Lease, PollInterval, Workers, RecordAhead, MaxAttempts, RetryBackoff and Retention
	// default to the constants of the same name.
	Lease        time.Duration
	PollInterval time.Duration
	Workers      int
	RecordAhead  int
	MaxAttempts  int
	RetryBackoff time.Duration
	Retention    time.Duration
	Metrics      *metrics.Metrics
	Log          *logrus.Entry
}

func (o Options) withDefaults() Options {
	defaults.Positive(&o.Lease, LeaseDefault)
	defaults.Positive(&o.PollInterval, PollIntervalDefault)
	defaults.Positive(&o.Workers, WorkersDefault)
	defaults.Positive(&o.RecordAhead, RecordAheadDefault)
	o.Skew = max(o.Skew, 0)
	defaults.Positive(&o.MaxAttempts, MaxAttemptsDefault)
	defaults.Positive(&o.RetryBackoff, RetryBackoffDefault)
	defaults.Positive(&o.Retention, RetentionDefault)
	defaults.Zero(&o.Owner, leaseowner.New())
	defaults.Quiet(&o.Log)
	return o
}

// Manager queues, runs and reports backfill jobs. It implements admin.Backfill. Jobs run in
// Run; several Managers (replicas) may share one state store.
type Manager struct {
	opts  Options
	store *store
	log   *logrus.Entry
	wake  chan struct{}

	mu      sync.Mutex
	running map[string]context.CancelCauseFunc
}

var _ admin.Backfill = (*Manager)(nil)

// New returns a manager over the state store. It runs nothing until Run.
func New(pool *pgxpool.Pool, opts Options) (*Manager, error) {
	if pool == nil || opts.Client == nil || opts.Recorder == nil || opts.Mapping == nil {
		return nil, errors.New("backfill: the state store, Client, Recorder and Mapping are required")
	}
	opts = opts.withDefaults()
	return &Manager{opts: opts, store: &store{pool: pool}, log: opts.Log.WithField("component", "backfill"),
		wake: make(chan struct{}, 1), running: map[string]context.CancelCauseFunc{}}, nil
}

// Run works on jobs until ctx ends, then hands the jobs it holds back to the store (another
// process, or this one restarted, resumes them from their checkpoints).
func (m *Manager) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for range m.opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.worker(ctx)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		m.maintain(ctx)
	}()
	wg.Wait()
}

func (m *Manager) worker(ctx context.Context) {
	t := time.NewTicker(m.opts.PollInterval)
	defer t.Stop()
	for ctx.Err() == nil {
		j, err := m.store.claim(ctx, m.opts.Owner, m.opts.Lease)
		if err != nil && ctx.Err() == nil {
			m.log.WithError(err).Warn("claiming a backfill job failed")
		}
		if j != nil {
			m.execute(ctx, j)
			continue // there may be more
		}
		select {
		case <-ctx.Done():
		case <-m.wake:
		case <-t.C:
		}
	}
}

// maintain sweeps ended jobs now and then.
func (m *Manager) maintain(ctx context.Context) {
	periodic.Now(ctx, time.Hour, func() bool {
		if err := m.store.sweep(ctx, m.opts.Retention); err != nil && ctx.Err() == nil {
			m.log.WithError(err).Warn("sweeping ended backfill jobs failed")
		}
		return true
	})
}

func (m *Manager) signal() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// Start queues a job for table ("database/table") in mode ("full" or "incremental") and
// returns its id. Requests that cannot succeed (unknown mode, unmapped table, a table that
// already has a job) wrap admin.ErrBadRequest.
func (m *Manager) Start(ctx context.Context, table, mode string, allowMassDelete bool) (string, error) {
	key, err := connector.ParseTableKey(strings.TrimSpace(table))
	if err != nil {
		return "", badRequest(err.Error())
	}
	md := Mode(mode)
	if md != ModeFull && md != ModeIncremental {
		return "", badRequest(fmt.Sprintf("mode %q: use \"full\" or \"incremental\"", mode))
	}
	if allowMassDelete && md != ModeFull {
		return "", badRequest("allow_mass_delete applies to full jobs only (an incremental job records no deletes)")
	}
	id, err := m.enqueue(ctx, key, md, TriggerAdmin, allowMassDelete)
	var ae *ActiveError
	var nm *NotMappedError
	if errors.As(err, &ae) || errors.As(err, &nm) {
		return "", badRequest(err.Error())
	}
	return id, err
}

func badRequest(msg string) error { return fmt.Errorf("%s: %w", msg, admin.ErrBadRequest) }

// NotMappedError is returned for a table no job may read: one the mapping does not name, or
// a key with database "*".
type NotMappedError struct{ msg string }

func (e *NotMappedError) Error() string { return e.msg }

// Enqueue queues a job and returns its id. A table with a queued or running job yields
// *ActiveError, a table that cannot be read *NotMappedError.
func (m *Manager) Enqueue(ctx context.Context, key connector.TableKey, mode Mode, trigger string) (string, error) {
	return m.enqueue(ctx, key, mode, trigger, false)
}

// EnqueueSince queues an incremental job of key that reads every row changed at or after from
// minus the skew window: the repair of changes the service refused, or that Appwrite dropped
// while a webhook was disabled, from that moment on. When the table's watermark (minus the
// skew) is earlier still, the job starts there instead, as a scheduled one would: on success it
// advances the watermark, which must never pass rows no job has read. A table that no job has
// reconciled yet has no watermark, and is read whole. A table with an active job yields
// *ActiveError (the caller tries again once it ended: the active job may have read the table
// before the refused changes).
func (m *Manager) EnqueueSince(ctx context.Context, key connector.TableKey, from time.Time, trigger string) (string, error) {
	if err := m.checkTable(key); err != nil {
		return "", err
	}
	id, err := m.store.insert(ctx, key.String(), ModeIncremental, trigger, m.opts.Skew, 0, nil, false, &from)
	if err != nil {
		return "", err
	}
	m.log.WithFields(logrus.Fields{"job": id, "table": key.String(), "mode": ModeIncremental, "trigger": trigger, "from": from}).Info("backfill job queued")
	m.signal()
	return id, nil
}

func (m *Manager) enqueue(ctx context.Context, key connector.TableKey, mode Mode, trigger string, allowMassDelete bool) (string, error) {
	if err := m.checkTable(key); err != nil {
		return "", err
	}
	id, err := m.store.insert(ctx, key.String(), mode, trigger, m.opts.Skew, 0, nil, allowMassDelete, nil)
	if err != nil {
		return "", err
	}
	m.log.WithFields(logrus.Fields{"job": id, "table": key.String(), "mode": mode, "trigger": trigger}).Info("backfill job queued")
	m.signal()
	return id, nil
}

// enqueueIfDue queues a job unless one of dueModes was created for the table within every
// (or one is active). It returns "" when nothing was queued.
func (m *Manager) enqueueIfDue(ctx context.Context, key connector.TableKey, mode Mode, trigger string, every time.Duration, dueModes ...Mode) (string, error) {
	modes := make([]string, len(dueModes))
	for i, d := range dueModes {
		modes[i] = string(d)
	}
	id, err := m.store.insert(ctx, key.String(), mode, trigger, m.opts.Skew, every, modes, false, nil)
	var ae *ActiveError
	if errors.As(err, &ae) || id == "" {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	m.log.WithFields(logrus.Fields{"job": id, "table": key.String(), "mode": mode, "trigger": trigger}).Info("backfill job queued")
	m.signal()
	return id, nil
}

func (m *Manager) checkTable(key connector.TableKey) error {
	if key.Database == "*" {
		return &NotMappedError{fmt.Sprintf("table %s: the mapping entry applies to every database, so name one, e.g. \"main/%s\"", key, key.Table)}
	}
	if m.opts.Mapping.Lookup(key) == nil {
		names := make([]string, 0, len(m.opts.Mapping.Tables))
		for _, t := range m.opts.Mapping.Tables {
			names = append(names, t.Key().String())
		}
		return &NotMappedError{fmt.Sprintf("table %s is not mapped (mapped: %s): add it under tables: in the config first", key, strings.Join(names, ", "))}
	}
	return nil
}

// Tables returns the mapped tables a schedule or a reconcile-all covers: every entry with a
// concrete database (entries for database "*" name no table to list).
func (m *Manager) Tables() []connector.TableKey {
	var out []connector.TableKey
	for _, t := range m.opts.Mapping.Tables {
		if t.Database != "*" {
			out = append(out, t.Key())
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// ReconcileAll queues a job of mode for every table of Tables that has none active, and
// returns the ids queued.
func (m *Manager) ReconcileAll(ctx context.Context, mode Mode, trigger string) ([]string, error) {
	var ids []string
	var errs []error
	for _, k := range m.Tables() {
		id, err := m.Enqueue(ctx, k, mode, trigger)
		var ae *ActiveError
		switch {
		case errors.As(err, &ae):
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: %w", k, err))
		default:
			ids = append(ids, id)
		}
	}
	return ids, errors.Join(errs...)
}

// Get returns the job (a *Job) for admin.
func (m *Manager) Get(ctx context.Context, id string) (any, bool, error) {
	j, err := m.Job(ctx, id)
	return j, j != nil, err
}

// Job returns the job, or nil when there is no such job.
func (m *Manager) Job(ctx context.Context, id string) (*Job, error) { return m.store.get(ctx, id) }

// List returns the newest jobs first (a []*Job) for admin.
func (m *Manager) List(ctx context.Context, limit int) (any, error) { return m.store.list(ctx, limit) }

// Cancel ends an active job; false when there is none with that id. A job running in this
// process stops at once, elsewhere at its next heartbeat.
func (m *Manager) Cancel(ctx context.Context, id string) (bool, error) {
	mode, ok, err := m.store.cancel(ctx, id)
	if err != nil || !ok {
		return ok, err
	}
	m.mu.Lock()
	if cancel := m.running[id]; cancel != nil {
		cancel(errCanceled)
	}
	m.mu.Unlock()
	if m.opts.Metrics != nil {
		m.opts.Metrics.BackfillJobs.WithLabelValues(string(mode), string(StateCanceled)).Inc()
	}
	m.log.WithField("job", id).Info("backfill job canceled")
	return true, nil
}

// execute runs one claimed job and settles it: succeeded, retried later, failed, or handed
// back when this process stops.
func (m *Manager) execute(ctx context.Context, j *Job) {
	log := m.log.WithFields(logrus.Fields{"job": j.ID, "table": j.Table, "mode": j.Mode})
	if j.RowsRead > 0 || j.Phase != phaseScan {
		log.WithFields(logrus.Fields{"checkpoint": j.Checkpoint, "phase": j.Phase, "rows_read": j.RowsRead}).Info("backfill job resumed")
	} else {
		log.Info("backfill job started")
	}
	jctx, cancel := context.WithCancelCause(ctx)
	m.mu.Lock()
	m.running[j.ID] = cancel
	m.mu.Unlock()
	hbDone := make(chan struct{})
	go m.heartbeat(jctx, j.ID, cancel, hbDone)

	r := &run{m: m, job: j, cancel: cancel, log: log}
	err := r.do(jctx)
	cause := context.Cause(jctx) // nil while the job's context is live
	cancel(nil)
	<-hbDone
	m.mu.Lock()
	delete(m.running, j.ID)
	m.mu.Unlock()

	// Settle even while stopping, within a bound.
	sctx, done := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer done()
	switch {
	case errors.Is(cause, errCanceled):
		log.Info("backfill job stopped: canceled")
	case errors.Is(cause, errLeaseLost):
		log.Warn("backfill job stopped: another process took it over (this one did not renew its lease in time)")
	case ctx.Err() != nil:
		if err := m.store.release(sctx, j.ID, m.opts.Owner); err != nil {
			log.WithError(err).Warn("handing the backfill job back failed; it resumes when its lease lapses")
		} else {
			log.Info("backfill job handed back: it resumes from its checkpoint")
		}
	case err == nil:
		ok, serr := m.store.succeed(sctx, j.ID, m.opts.Owner)
		if serr != nil {
			// Leave it running: its lease lapses and the job resumes, finding nothing left.
			log.WithError(serr).Warn("marking the backfill job succeeded failed")
			return
		}
		if !ok {
			return
		}
		m.jobEnded(j.Mode, StateSucceeded)
		if fin, _ := m.store.get(sctx, j.ID); fin != nil {
			log = log.WithFields(logrus.Fields{"rows_read": fin.RowsRead, "rows_changed": fin.RowsChanged,
				"rows_deleted": fin.RowsDeleted, "rate_per_s": int64(fin.RatePerS)})
		}
		log.Info("backfill job succeeded")
	default:
		m.settleFailure(sctx, j, err, log)
	}
}

func (m *Manager) settleFailure(ctx context.Context, j *Job, err error, log *logrus.Entry) {
	attempt := j.Failures + 1
	final := permanent(err) || attempt >= m.opts.MaxAttempts
	wait := min(m.opts.RetryBackoff<<min(j.Failures, 16), time.Hour)
	reason := err.Error()
	switch {
	case !final:
		reason = fmt.Sprintf("attempt %d of %d failed, retrying in %s: %s", attempt, m.opts.MaxAttempts, wait, reason)
	case attempt > 1:
		reason = fmt.Sprintf("failed after %d attempts: %s", attempt, reason)
	}
	st, ferr := m.store.fail(ctx, j.ID, m.opts.Owner, reason, final, wait)
	if ferr != nil {
		log.WithError(ferr).Warn("recording the backfill job's failure failed; it is retried when its lease lapses")
		return
	}
	if st == StateFailed {
		m.jobEnded(j.Mode, StateFailed)
		log.WithError(err).Error("backfill job failed")
	} else if st == StateQueued {
		log.WithError(err).WithField("retry_in", wait.String()).Warn("backfill job attempt failed; retrying")
	}
}

func (m *Manager) jobEnded(mode Mode, st State) {
	if m.opts.Metrics != nil {
		m.opts.Metrics.BackfillJobs.WithLabelValues(string(mode), string(st)).Inc()
	}
}

// heartbeat renews the job's lease and ends the job when it was cancelled (by any process) or
// taken over.
func (m *Manager) heartbeat(ctx context.Context, id string, cancel context.CancelCauseFunc, done chan<- struct{}) {
	defer close(done)
	periodic.After(ctx, min(m.opts.PollInterval, m.opts.Lease/3), func() bool {
		return m.checkHeld(ctx, id, cancel) == nil
	})
}

// checkHeld renews the lease; when the job is no longer held it cancels the job with the
// reason and returns it. A store error is not a loss: the lease has slack.
func (m *Manager) checkHeld(ctx context.Context, id string, cancel context.CancelCauseFunc) error {
	ok, st, err := m.store.renew(ctx, id, m.opts.Owner, m.opts.Lease)
	if err != nil {
		if ctx.Err() == nil {
			m.log.WithError(err).WithField("job", id).Warn("renewing the backfill job's lease failed")
		}
		return nil
	}
	if ok {
		return nil
	}
	cause := errLeaseLost
	if st == StateCanceled {
		cause = errCanceled
	}
	cancel(cause)
	return cause
}
