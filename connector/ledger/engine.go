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
)

// Engine defaults.
const (
	BatchSizeDefault    = 1000
	WorkersDefault      = 2
	LeaseDefault        = 60 * time.Second
	PollIntervalDefault = 100 * time.Millisecond
	MaxBackoffDefault   = 5 * time.Minute
	// applyShare is the part of the lease an apply may take: it must finish (or be cancelled)
	// before the lease lapses, or another worker could claim the same rows.
	applyShare = 0.8
)

// SinkConfig is one sink with its batch size.
type SinkConfig struct {
	Sink      sink.Sink
	BatchSize int
	Workers   int
}

// EngineOptions configures delivery.
type EngineOptions struct {
	Lease        time.Duration
	PollInterval time.Duration
	MaxBackoff   time.Duration
	Metrics      *metrics.Metrics
	Log          *logrus.Entry
}

// Engine moves pending rows from the ledger to the sinks.
type Engine struct {
	q     *Queue
	sinks []SinkConfig
	opts  EngineOptions
	wake  map[string]chan struct{}

	mu     sync.Mutex
	status map[string]*SinkStatus
}

// SinkStatus is the engine's live view of one sink.
type SinkStatus struct {
	State  string    `json:"state"` // starting, running, paused
	Reason string    `json:"reason,omitempty"`
	Since  time.Time `json:"since"`
}

// NewEngine prepares delivery to sinks.
func NewEngine(q *Queue, sinks []SinkConfig, opts EngineOptions) *Engine {
	if opts.Lease <= 0 {
		opts.Lease = LeaseDefault
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = PollIntervalDefault
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = MaxBackoffDefault
	}
	if opts.Log == nil {
		opts.Log = logrus.NewEntry(logrus.StandardLogger())
	}
	e := &Engine{q: q, sinks: sinks, opts: opts, wake: map[string]chan struct{}{}, status: map[string]*SinkStatus{}}
	for i := range e.sinks {
		s := &e.sinks[i]
		if s.BatchSize <= 0 {
			s.BatchSize = BatchSizeDefault
		}
		if s.Workers <= 0 {
			s.Workers = WorkersDefault
		}
		e.wake[s.Sink.Name()] = make(chan struct{}, 1)
		e.status[s.Sink.Name()] = &SinkStatus{State: "starting", Since: time.Now()}
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
		s.State, s.Reason, s.Since = state, reason, time.Now()
	}
	e.mu.Unlock()
	if m := e.opts.Metrics; m != nil {
		up := 0.0
		if state == "running" {
			up = 1
		}
		m.SinkUp.WithLabelValues(name).Set(up)
	}
}

// Run starts each sink (retrying its Start with backoff while it is unavailable) and its
// workers; it returns when ctx is done and every worker has settled its claim.
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
			var ww sync.WaitGroup
			for w := 0; w < sc.Workers; w++ {
				ww.Add(1)
				go func() { defer ww.Done(); e.work(ctx, sc) }()
			}
			ww.Wait()
		}()
	}
	wg.Wait()
}

func (e *Engine) newBackoff() *backoff.ExponentialBackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 200 * time.Millisecond
	b.Multiplier = 2
	b.RandomizationFactor = 0.5
	b.MaxInterval = e.opts.MaxBackoff
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
		if !sleep(ctx, d) {
			return false
		}
	}
}

func (e *Engine) work(ctx context.Context, sc SinkConfig) {
	name := sc.Sink.Name()
	log := e.opts.Log.WithField("sink", name)
	bo := e.newBackoff()
	m := e.opts.Metrics
	for ctx.Err() == nil {
		t0 := time.Now()
		claim, err := e.q.Claim(ctx, name, sc.BatchSize, e.opts.Lease)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			d := bo.NextBackOff()
			log.WithError(err).Warn("claiming from the state store failed")
			sleep(ctx, d)
			continue
		}
		if m != nil {
			m.ClaimLatency.WithLabelValues(name).Observe(time.Since(t0).Seconds())
		}
		if len(claim.Items) == 0 {
			select {
			case <-ctx.Done():
				return
			case <-e.wake[name]:
			case <-time.After(e.opts.PollInterval):
			}
			continue
		}
		if m != nil {
			m.BatchSize.WithLabelValues(name).Observe(float64(len(claim.Items)))
		}
		actx, cancel := context.WithTimeout(ctx, time.Duration(float64(e.opts.Lease)*applyShare))
		t1 := time.Now()
		err = sc.Sink.Apply(actx, claim.Items)
		cancel()
		if m != nil {
			m.ApplyLatency.WithLabelValues(name).Observe(time.Since(t1).Seconds())
		}
		// Settle the claim even while shutting down, so applied rows are not re-sent. Past the
		// lease settling is pointless (the rows are claimable again), so the lease bounds it.
		sctx, scancel := context.WithTimeout(context.Background(), e.opts.Lease)
		pause := e.settle(sctx, sc, claim, err, bo, log)
		scancel()
		if pause > 0 {
			sleep(ctx, pause) // the sink is failing: pause this worker's delivery too
		}
	}
}

// settle records a batch's outcome and returns how long the worker should pause.
func (e *Engine) settle(ctx context.Context, sc SinkConfig, claim *Claim, applyErr error, bo *backoff.ExponentialBackOff, log *logrus.Entry) time.Duration {
	name := sc.Sink.Name()
	m := e.opts.Metrics
	var batchErr *connector.BatchError
	switch {
	case applyErr == nil || errors.As(applyErr, &batchErr):
		outs := make([]Outcome, len(claim.Items))
		applied, dead := 0, 0
		for i, it := range claim.Items {
			outs[i] = Outcome{Item: it}
			if batchErr != nil {
				if err, bad := batchErr.Failed[i]; bad {
					if !connector.IsPermanent(err) {
						err = connector.Permanent("rejected by "+name, err)
					}
					outs[i].Err = err
					dead++
					log.WithFields(logrus.Fields{"table": it.Key.String(), "row_id": it.RowID}).WithError(err).Warn("row dead-lettered")
					continue
				}
			}
			applied++
		}
		if err := e.q.Complete(ctx, claim, outs); err != nil {
			log.WithError(err).Warn("marking batch applied failed; its lease will lapse and it will be re-applied (idempotent)")
		}
		bo.Reset()
		e.setStatus(name, "running", "")
		if m != nil {
			m.Applied.WithLabelValues(name).Add(float64(applied))
			m.Failed.WithLabelValues(name, "dead_letter").Add(float64(dead))
		}
		return 0
	case errors.Is(applyErr, connector.ErrSinkUnavailable) || errors.Is(applyErr, connector.ErrUnauthorized) || errors.Is(applyErr, context.DeadlineExceeded):
		d := bo.NextBackOff()
		e.setStatus(name, "paused", applyErr.Error())
		log.WithError(applyErr).WithField("retry_in", d.String()).Warn("sink unavailable; delivery paused")
		if err := e.q.Release(ctx, claim, d, applyErr.Error()); err != nil {
			log.WithError(err).Warn("releasing batch failed; its lease will lapse")
		}
		if m != nil {
			m.Failed.WithLabelValues(name, "unavailable").Add(float64(len(claim.Items)))
		}
		return d
	default:
		d := bo.NextBackOff()
		outs := make([]Outcome, len(claim.Items))
		for i, it := range claim.Items {
			outs[i] = Outcome{Item: it, Err: applyErr, Backoff: d}
		}
		log.WithError(applyErr).WithField("retry_in", d.String()).Warn("batch failed; will retry")
		if err := e.q.Complete(ctx, claim, outs); err != nil {
			log.WithError(err).Warn("recording retry failed; its lease will lapse")
		}
		if m != nil {
			m.Failed.WithLabelValues(name, "retry").Add(float64(len(claim.Items)))
		}
		return d
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
