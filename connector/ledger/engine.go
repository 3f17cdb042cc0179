package ledger

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/sirupsen/logrus"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/connector/metrics"
	"github.com/appwrite-sync/appwrite-sync/connector/sink"
	"github.com/appwrite-sync/appwrite-sync/internal/clock"
	"github.com/appwrite-sync/appwrite-sync/internal/defaults"
	"github.com/appwrite-sync/appwrite-sync/internal/leaseowner"
)

// Engine defaults.
const (
	BatchSizeDefault = 1000
	// WorkersDefault is the number of batches of one sink in flight at once.
	WorkersDefault      = 2
	LeaseDefault        = 60 * time.Second
	PollIntervalDefault = 100 * time.Millisecond
	MaxBackoffDefault   = 5 * time.Minute
	// LingerDefault is serve's EngineOptions.Linger (delivery.linger; the zero value is no
	// linger): a few milliseconds of freshness buy batches of tens instead of ones and twos
	// when changes trickle in.
	LingerDefault = 20 * time.Millisecond
	// retryCheckEvery bounds how long a due retry row (or a replayed dead letter) waits when
	// this process wrote nothing to the retry table.
	retryCheckEvery = time.Second
	// standbyPoll is how often a replica without a sink's lease tries to take it.
	standbyPoll = time.Second
	// applyShare is the part of the lease an apply may take: it must finish (or be cancelled)
	// before the lease lapses, or another replica could take the lease and send the same rows.
	applyShare = 0.8
)

// SinkConfig is one sink with its batch size.
type SinkConfig struct {
	Sink sink.Sink
	// BatchSize is the most items one Apply receives. Default: the sink's own
	// (sink.Batcher), else BatchSizeDefault.
	BatchSize int
	Workers   int
}

// EngineOptions configures delivery.
type EngineOptions struct {
	Lease        time.Duration
	PollInterval time.Duration
	MaxBackoff   time.Duration
	// Linger: after reading a batch less than a quarter full, wait this long before the next
	// read, so a trickle of changes is delivered in batches rather than one by one.
	Linger time.Duration
	// Clock times the engine's own waits and deadlines: polling, linger, pauses and backoff,
	// lease renewal. Default: the wall clock; tests pass clock.Fake. Lease expiry and retry
	// due times are Postgres's now(), and an apply's deadline is a context's: both stay wall time.
	Clock clock.Clock
	// Busy, when set, reports that ingest keeps the machine busy (Recorder.Saturated): every
	// read short of a full batch then waits busyLingerFactor times Linger, so delivery writes
	// fewer, larger batches and leaves more of the CPU to acknowledging webhooks.
	Busy func() bool
	// Join, when set, fills each batch's relationship columns from the ledger before it is
	// applied (Joiner.Join); its error fails the batch like the sink's would.
	Join    func(ctx context.Context, items []sink.Item) error
	Metrics *metrics.Metrics
	Log     *logrus.Entry
}

// Engine moves pending rows from the ledger to the sinks.
type Engine struct {
	q     *Queue
	sinks []SinkConfig
	opts  EngineOptions
	wake  map[string]chan struct{}
	owner string // this process's lease identity

	mu     sync.Mutex
	status map[string]*SinkStatus
}

// SinkStatus is the engine's live view of one sink.
type SinkStatus struct {
	State  string    `json:"state"` // starting, running, paused, standby (another replica delivers)
	Reason string    `json:"reason,omitempty"`
	Since  time.Time `json:"since"`
}

// NewEngine prepares delivery to sinks.
func NewEngine(q *Queue, sinks []SinkConfig, opts EngineOptions) *Engine {
	defaults.Positive(&opts.Lease, LeaseDefault)
	defaults.Positive(&opts.PollInterval, PollIntervalDefault)
	defaults.Positive(&opts.MaxBackoff, MaxBackoffDefault)
	defaults.Log(&opts.Log)
	defaults.Zero[clock.Clock](&opts.Clock, clock.Wall{})
	e := &Engine{q: q, sinks: sinks, opts: opts, wake: map[string]chan struct{}{}, status: map[string]*SinkStatus{},
		owner: leaseowner.New()}
	for i := range e.sinks {
		s := &e.sinks[i]
		if b, ok := s.Sink.(sink.Batcher); ok && s.BatchSize <= 0 {
			s.BatchSize = b.BatchSize()
		}
		if s.BatchSize <= 0 {
			s.BatchSize = BatchSizeDefault
		}
		if s.Workers <= 0 {
			s.Workers = WorkersDefault
		}
		e.wake[s.Sink.Name()] = make(chan struct{}, 1)
		e.status[s.Sink.Name()] = &SinkStatus{State: "starting", Since: opts.Clock.Now()}
	}
	return e
}

// Notify wakes every sink's workers (called after a commit queued work).
func (e *Engine) Notify() {
	for _, ch := range e.wake {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Status returns a copy of each sink's state.
func (e *Engine) Status() map[string]SinkStatus {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]SinkStatus, len(e.status))
	for k, v := range e.status {
		out[k] = *v
	}
	return out
}

func (e *Engine) setStatus(name, state, reason string) {
	e.mu.Lock()
	s := e.status[name]
	if s.State != state || s.Reason != reason {
		s.State, s.Reason, s.Since = state, reason, e.opts.Clock.Now()
	}
	e.mu.Unlock()
	if m := e.opts.Metrics; m != nil {
		up := 0.0
		if state == "running" || state == "standby" { // a standby replica is not a failing sink
			up = 1
		}
		m.SinkUp.WithLabelValues(name).Set(up)
	}
}

// Run starts each sink (retrying its Start with backoff while it is unavailable) and its
// deliverer; it returns when ctx is done and every batch in flight has settled.
func (e *Engine) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for i := range e.sinks {
		sc := e.sinks[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !e.start(ctx, sc.Sink) {
				return
			}
			newDeliverer(e, sc).run(ctx)
		}()
	}
	wg.Wait()
}

func (e *Engine) newBackoff() *backoff.ExponentialBackOff { return retryBackoff(e.opts.MaxBackoff) }

// retryBackoff is how the ledger's workers (sink delivery, the row history's delivery, the
// relationship fan-out) space retries after a failure: from 200 ms, doubling, ±50% jitter (so
// replicas retrying the same state store spread out), up to max.
func retryBackoff(max time.Duration) *backoff.ExponentialBackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 200 * time.Millisecond
	b.Multiplier = 2
	b.RandomizationFactor = 0.5
	b.MaxInterval = max
	return b
}

func (e *Engine) start(ctx context.Context, s sink.Sink) bool {
	bo := e.newBackoff()
	log := e.opts.Log.WithField("sink", s.Name())
	for {
		err := s.Start(ctx)
		if err == nil {
			e.setStatus(s.Name(), "running", "")
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		d := bo.NextBackOff()
		e.setStatus(s.Name(), "paused", "start: "+err.Error())
		log.WithError(err).WithField("retry_in", d.String()).Warn("sink not ready; delivery paused")
		if !e.sleep(ctx, d) {
			return false
		}
	}
}

// A deliverer moves one sink's log to the sink while this process holds the sink's lease.
// It reads batches in log order and keeps up to Workers of them in flight; a row is never in
// two in-flight batches (a newer version read while an older one is in flight is deferred to
// the retry table), and the cursor only moves past a batch once it and every batch before it
// are settled, so a crash re-delivers at most the batches in flight (applies are idempotent).
type deliverer struct {
	e    *Engine
	sc   SinkConfig
	name string
	log  *logrus.Entry
	m    *metrics.Metrics

	slots    chan struct{} // one per batch in flight
	inflight sync.WaitGroup
	settleMu sync.Mutex // settles run one at a time, so the cursor only moves forward

	mu          sync.Mutex
	bo          *backoff.ExponentialBackOff
	leader      bool
	epoch       int // bumped when the lease is lost: older batches must not settle
	ectx        context.Context
	ecancel     context.CancelFunc // cancels the batches of the current epoch
	leaseEnd    time.Time          // local clock
	readPos     Pos
	batches     []*batch // unsettled, in read order
	busy        map[itemKey]struct{}
	deferredAt  map[itemKey]*deferral // rows with a deferral not yet settled
	pausedUntil time.Time
	retryCheck  time.Time // when the retry table was last read
	retryHint   bool      // this process wrote retry rows since
}

// itemKey identifies a delivered row. The table key stays a struct: rendering it as
// "database/table" for every lookup cost an allocation per row and map operation.
type itemKey struct {
	table connector.TableKey
	id    string
}

func keyOf(it sink.Item) itemKey { return itemKey{it.Key, it.RowID} }

// A deferral is settled only if no newer version of its row was applied meanwhile: batches
// stuck behind a sink outage may settle their deferrals long after the retry of that row
// landed, and writing them then would only re-send the same newest version.
type deferral struct {
	open    int   // deferrals of the row read but not settled
	applied int64 // newest version of the row applied since the first of them
}

type batch struct {
	entries  []Entry // to send
	deferred []Entry // newer versions of rows in flight: back to the retry table
	end      Pos     // read position after this batch: the cursor once it and its elders settle
	epoch    int
	ctx      context.Context // cancelled when the lease is lost or on shutdown
	done     bool
}

func newDeliverer(e *Engine, sc SinkConfig) *deliverer {
	name := sc.Sink.Name()
	return &deliverer{e: e, sc: sc, name: name, log: e.opts.Log.WithField("sink", name), m: e.opts.Metrics,
		slots: make(chan struct{}, sc.Workers), bo: e.newBackoff(), busy: map[itemKey]struct{}{}, deferredAt: map[itemKey]*deferral{}}
}

func (d *deliverer) run(ctx context.Context) {
	lease := d.e.opts.Lease
	defer func() {
		d.inflight.Wait()
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := d.e.q.Resign(rctx, d.name, d.e.owner); err != nil {
			d.log.WithError(err).Debug("giving up the delivery lease failed; it will lapse")
		}
	}()
	for ctx.Err() == nil {
		d.mu.Lock()
		now := d.e.opts.Clock.Now()
		leader, leaseLeft, paused := d.leader, d.leaseEnd.Sub(now), d.pausedUntil.Sub(now)
		d.mu.Unlock()
		if !leader {
			d.inflight.Wait() // batches of a lost lease finish (bounded by their deadline) first
			if !d.acquire(ctx) {
				// A standby asks again every second (one single-row update): a resigned lease
				// is taken over at once, a lapsed one within a second of lapsing.
				d.e.sleep(ctx, min(lease/3, standbyPoll))
			}
			continue
		}
		if leaseLeft < lease*2/3 {
			d.renew(ctx)
			continue
		}
		if paused > 0 {
			d.e.sleep(ctx, min(paused, lease/3))
			continue
		}
		select {
		case d.slots <- struct{}{}:
		case <-ctx.Done():
			return
		case <-d.e.opts.Clock.After(lease / 3):
			continue
		}
		b, err := d.next(ctx)
		if err != nil || b == nil {
			<-d.slots
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				d.log.WithError(err).Warn("reading the delivery log failed")
				d.e.sleep(ctx, d.nextBackoff())
				continue
			}
			select {
			case <-ctx.Done():
				return
			case <-d.e.wake[d.name]:
			case <-d.e.opts.Clock.After(d.e.opts.PollInterval):
			}
			continue
		}
		d.inflight.Add(1)
		go func() {
			defer d.inflight.Done()
			defer func() { <-d.slots }()
			d.deliver(b)
		}()
		if linger := d.lingerFor(len(b.entries) + len(b.deferred)); linger > 0 {
			d.e.sleep(ctx, linger)
		}
	}
}

// busyLingerFactor: how much longer delivery lingers while ingest keeps the machine busy. With
// the default 20 ms, 100 ms: at 10,000 changes a second batches then fill towards a thousand
// rows, and the warehouse takes about a quarter of the statements, for less CPU per change
// and the same freshness when ingest does not saturate (measured in BENCHMARKS.md).
const busyLingerFactor = 5

// lingerFor is how long to wait before the next read after reading a batch of n items.
func (d *deliverer) lingerFor(n int) time.Duration {
	linger := d.e.opts.Linger
	switch {
	case linger <= 0 || n >= d.sc.BatchSize:
		return 0
	case d.e.opts.Busy != nil && d.e.opts.Busy():
		return busyLingerFactor * linger
	case n < d.sc.BatchSize/4:
		return linger
	}
	return 0
}

func (d *deliverer) acquire(ctx context.Context) bool {
	held, cur, left, err := d.e.q.Acquire(ctx, d.name, d.e.owner, d.e.opts.Lease)
	if err != nil {
		if ctx.Err() == nil {
			d.log.WithError(err).Warn("taking the delivery lease failed")
		}
		return false
	}
	if !held {
		d.e.setStatus(d.name, "standby", "another replica holds the delivery lease")
		return false
	}
	d.mu.Lock()
	d.leader, d.leaseEnd, d.readPos = true, d.e.opts.Clock.Now().Add(left), cur
	d.batches, d.busy, d.deferredAt = nil, map[itemKey]struct{}{}, map[itemKey]*deferral{}
	d.ectx, d.ecancel = context.WithCancel(ctx)
	d.mu.Unlock()
	d.e.setStatus(d.name, "running", "")
	d.log.WithFields(logrus.Fields{"tx": cur.Tx, "seq": cur.Seq}).Info("delivering from the settled cursor")
	return true
}

func (d *deliverer) renew(ctx context.Context) {
	held, _, left, err := d.e.q.Acquire(ctx, d.name, d.e.owner, d.e.opts.Lease)
	switch {
	case err != nil:
		if ctx.Err() == nil {
			d.log.WithError(err).Warn("renewing the delivery lease failed")
			d.e.sleep(ctx, time.Second)
		}
	case !held:
		d.lose("another replica took the delivery lease")
	default:
		d.mu.Lock()
		d.leaseEnd = d.e.opts.Clock.Now().Add(left)
		d.mu.Unlock()
	}
}

// lose drops the lease's in-memory state; batches in flight finish without settling and the
// next holder re-delivers them from the settled cursor.
func (d *deliverer) lose(why string) {
	d.mu.Lock()
	if d.leader {
		d.leader = false
		d.epoch++
		d.ecancel()
		d.log.WithField("reason", why).Warn("stopped delivering: it resumes from the settled cursor")
	}
	d.mu.Unlock()
}

func (d *deliverer) nextBackoff() time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.bo.NextBackOff()
}

// pause holds this sink's reads back for the next backoff, which it returns.
func (d *deliverer) pause() time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	wait := d.bo.NextBackOff()
	d.pausedUntil = d.e.opts.Clock.Now().Add(wait)
	return wait
}

// next reads the next batch: due retries first (up to half a batch), then the log.
func (d *deliverer) next(ctx context.Context) (*batch, error) {
	t0 := time.Now()
	limit := d.sc.BatchSize
	// The retry table is read when this process wrote to it, and otherwise once a second (for
	// backoffs coming due, replays and re-projections, perhaps by another replica).
	var retries []Entry
	d.mu.Lock()
	checkRetries := d.retryHint || d.e.opts.Clock.Now().Sub(d.retryCheck) >= retryCheckEvery
	d.mu.Unlock()
	if checkRetries {
		var err error
		if retries, err = d.e.q.ReadRetries(ctx, d.name, max(1, limit/2)); err != nil {
			return nil, err
		}
		d.mu.Lock()
		d.retryCheck, d.retryHint = d.e.opts.Clock.Now(), len(retries) > 0
		d.mu.Unlock()
	}
	d.mu.Lock()
	from, epoch := d.readPos, d.epoch
	d.mu.Unlock()
	entries, err := d.e.q.ReadLog(ctx, from, limit-len(retries))
	if err != nil {
		return nil, err
	}
	if m := d.m; m != nil {
		m.ClaimLatency.WithLabelValues(d.name).Observe(time.Since(t0).Seconds())
	}
	if len(retries) == 0 && len(entries) == 0 {
		return nil, nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if epoch != d.epoch || !d.leader || d.readPos != from {
		return nil, nil // the lease changed hands while reading
	}
	b := &batch{end: from, epoch: epoch, ctx: d.ectx}
	if len(entries) > 0 {
		b.end = entries[len(entries)-1].Pos
	}
	picked := make(map[itemKey]int, len(retries)+len(entries))
	for _, e := range retries {
		k := keyOf(e.Item)
		if _, ok := d.busy[k]; ok {
			continue // stays due in the table; taken once the older version settles
		}
		picked[k] = len(b.entries)
		b.entries = append(b.entries, e)
	}
	for _, e := range entries {
		if !d.sc.Sink.Handles(e.Item.Key) {
			continue
		}
		k := keyOf(e.Item)
		if _, ok := d.busy[k]; ok {
			b.deferred = append(b.deferred, e)
			if d.deferredAt[k] == nil {
				d.deferredAt[k] = &deferral{}
			}
			d.deferredAt[k].open++
			continue
		}
		if i, ok := picked[k]; ok {
			if b.entries[i].Item.Seq < e.Item.Seq {
				e.Attempts = b.entries[i].Attempts
				b.entries[i] = e
			}
			continue
		}
		picked[k] = len(b.entries)
		b.entries = append(b.entries, e)
	}
	if len(b.entries) == 0 && len(b.deferred) == 0 && len(entries) == 0 {
		return nil, nil // only retries of rows still in flight: nothing to do yet
	}
	for k := range picked {
		d.busy[k] = struct{}{}
	}
	d.readPos = b.end
	d.batches = append(d.batches, b)
	return b, nil
}

// unavailable reports errors that pause the sink instead of counting against the rows.
func unavailable(err error) bool {
	return errors.Is(err, connector.ErrSinkUnavailable) || errors.Is(err, connector.ErrUnauthorized) || errors.Is(err, context.DeadlineExceeded)
}

// deliver applies a batch (retrying it while the sink is unavailable) and settles it.
func (d *deliverer) deliver(b *batch) {
	ctx := b.ctx
	items := make([]sink.Item, len(b.entries))
	for i, e := range b.entries {
		items[i] = e.Item
	}
	m := d.m
	var err error
	if join := d.e.opts.Join; join != nil && len(items) > 0 {
		if err = join(ctx, items); err != nil {
			items = nil // not applied: the batch is retried like a failed apply
		}
	}
	for len(items) > 0 {
		d.mu.Lock()
		current, leaseLeft := d.epoch == b.epoch && d.leader, d.leaseEnd.Sub(d.e.opts.Clock.Now())
		d.mu.Unlock()
		if !current {
			return
		}
		// The apply must end before the lease could lapse, or another replica could send the
		// same rows concurrently.
		budget := min(time.Duration(float64(d.e.opts.Lease)*applyShare), leaseLeft-d.e.opts.Lease/10)
		if budget <= 0 {
			d.e.sleep(ctx, d.e.opts.Lease/20) // the lease is being renewed (or lost)
			if ctx.Err() != nil {
				return
			}
			continue
		}
		if m != nil {
			m.BatchSize.WithLabelValues(d.name).Observe(float64(len(items)))
		}
		actx, cancel := context.WithTimeout(ctx, budget)
		t1 := time.Now()
		err = d.sc.Sink.Apply(actx, items)
		cancel()
		if m != nil {
			m.ApplyLatency.WithLabelValues(d.name).Observe(time.Since(t1).Seconds())
		}
		if err == nil || !unavailable(err) || ctx.Err() != nil {
			break
		}
		wait := d.pause()
		d.e.setStatus(d.name, "paused", err.Error())
		d.log.WithError(err).WithField("retry_in", wait.String()).Warn("sink unavailable; delivery paused")
		if m != nil {
			m.Failed.WithLabelValues(d.name, "unavailable").Add(float64(len(items)))
		}
		if !d.e.sleep(ctx, wait) {
			return
		}
	}
	if err != nil && ctx.Err() != nil {
		return // shutting down mid-apply: not settled, re-delivered on the next start
	}
	outs, applied, dead, retry := d.outcomes(b, err)
	d.settle(b, outs)
	if m != nil {
		m.Applied.WithLabelValues(d.name).Add(float64(applied))
		m.Failed.WithLabelValues(d.name, "dead_letter").Add(float64(dead))
		m.Failed.WithLabelValues(d.name, "retry").Add(float64(retry))
	}
}

// outcomes turns an apply's result into per-item outcomes.
func (d *deliverer) outcomes(b *batch, applyErr error) (outs []Outcome, applied, dead, retry int) {
	outs = make([]Outcome, 0, len(b.entries)+len(b.deferred))
	var batchErr *connector.BatchError
	switch {
	case applyErr == nil || errors.As(applyErr, &batchErr):
		for i, e := range b.entries {
			o := Outcome{Item: e.Item}
			if batchErr != nil {
				if err, bad := batchErr.Failed[i]; bad {
					if !connector.IsPermanent(err) {
						err = connector.Permanent("rejected by "+d.name, err)
					}
					o.Err, o.Attempts = err, e.Attempts+1
					dead++
					d.log.WithFields(logrus.Fields{"table": e.Item.Key.String(), "row_id": e.Item.RowID}).WithError(err).Warn("row dead-lettered")
					outs = append(outs, o)
					continue
				}
			}
			applied++
			outs = append(outs, o)
		}
		d.mu.Lock()
		d.bo.Reset()
		d.mu.Unlock()
		d.e.setStatus(d.name, "running", "")
	default:
		wait := d.pause()
		d.log.WithError(applyErr).WithField("retry_in", wait.String()).Warn("batch failed; will retry")
		for _, e := range b.entries {
			outs = append(outs, Outcome{Item: e.Item, Err: applyErr, Backoff: wait, Attempts: e.Attempts + 1})
		}
		retry = len(b.entries)
	}
	for _, e := range b.deferred {
		outs = append(outs, Outcome{Item: e.Item, Deferred: true, Attempts: e.Attempts})
	}
	return outs, applied, dead, retry
}

// settle records the outcomes and moves the cursor past every settled batch at the head.
func (d *deliverer) settle(b *batch, outs []Outcome) {
	d.settleMu.Lock()
	defer d.settleMu.Unlock()
	d.mu.Lock()
	if b.epoch != d.epoch || !d.leader {
		d.mu.Unlock()
		return
	}
	b.done = true
	var cursor *Pos
	n := 0
	for n < len(d.batches) && d.batches[n].done {
		end := d.batches[n].end
		cursor = &end
		n++
	}
	d.batches = d.batches[n:]
	kept := outs[:0:0]
	for _, o := range outs {
		if o.Deferred {
			k := keyOf(o.Item)
			st := d.deferredAt[k]
			if st.open--; st.open == 0 {
				delete(d.deferredAt, k)
			}
			if st.applied >= o.Item.Seq {
				continue // a version at least as new already landed
			}
		}
		kept = append(kept, o)
	}
	outs = kept
	d.mu.Unlock()

	// Settle even while shutting down, so applied rows are not re-sent; the lease bounds it.
	ctx, cancel := context.WithTimeout(context.Background(), d.e.opts.Lease)
	left, err := d.e.q.Settle(ctx, d.name, d.e.owner, d.e.opts.Lease, outs, cursor)
	cancel()
	d.mu.Lock()
	for _, e := range b.entries {
		delete(d.busy, keyOf(e.Item))
	}
	if err == nil {
		d.leaseEnd = d.e.opts.Clock.Now().Add(left)
		for _, o := range outs {
			if st := d.deferredAt[keyOf(o.Item)]; st != nil && o.Err == nil && !o.Deferred {
				st.applied = max(st.applied, o.Item.Seq)
			}
		}
	}
	for _, o := range outs {
		if o.Err != nil || o.Deferred {
			d.retryHint = true // a deferred row is due at once; backoffs come due later
			break
		}
	}
	d.mu.Unlock()
	switch {
	case errors.Is(err, ErrLeaseLost):
		d.lose(err.Error())
	case err != nil:
		d.log.WithError(err).Warn("settling a batch failed; delivery resumes from the settled cursor (re-applying is idempotent)")
		d.lose("settling failed")
	}
}

// sleep waits d on the engine's clock; false when ctx ended first.
func (e *Engine) sleep(ctx context.Context, d time.Duration) bool {
	return sleepOn(ctx, e.opts.Clock, d)
}

// sleep waits d on the wall clock, or until ctx ends (false): for the fan-out and the history
// delivery, which take no Clock.
func sleep(ctx context.Context, d time.Duration) bool { return sleepOn(ctx, clock.Wall{}, d) }

func sleepOn(ctx context.Context, c clock.Clock, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-c.After(d):
		return true
	}
}
