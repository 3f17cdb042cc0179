package ledger

import (
	"context"
	"errors"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/appwrite-sync/appwrite-sync/connector/metrics"
	"github.com/appwrite-sync/appwrite-sync/internal/defaults"
	"github.com/appwrite-sync/appwrite-sync/internal/leaseowner"
)

// HistoryWriter writes versions of the history log to a destination (the warehouse's
// <table>_history tables). WriteHistory must be idempotent: a version written twice (a crash
// between the write and the cursor's move re-sends it) must leave one row.
type HistoryWriter interface {
	// Name is the history sink's id in appwrite_sync.history_cursor.
	Name() string
	// Start prepares the destination (creates the tables); idempotent, retried with backoff.
	Start(ctx context.Context) error
	// WriteHistory writes the versions; on error none is assumed written and the same versions
	// are sent again after a backoff.
	WriteHistory(ctx context.Context, versions []HistoryVersion) error
}

// HistoryDeliveryOptions configures a HistoryDelivery; zero values take the Engine's defaults.
type HistoryDeliveryOptions struct {
	BatchSize    int
	Lease        time.Duration
	PollInterval time.Duration
	MaxBackoff   time.Duration
	// Linger is how long the delivery waits, after a Notify or a batch that was not full,
	// before it reads: the versions of many group commits then go in one warehouse insert.
	// Default HistoryLingerDefault.
	Linger  time.Duration
	Metrics *metrics.Metrics
	Log     *logrus.Entry
}

// HistoryLingerDefault is HistoryDeliveryOptions.Linger when unset: as the audit log's
// delivery, a read and an insert per group commit cost the warehouse more than the versions
// themselves under load (docs/benchmarks.md, "Row history and audit log cost").
const HistoryLingerDefault = 100 * time.Millisecond

// HistoryDelivery moves the history log to a HistoryWriter, in log order, one batch at a
// time, while this process holds the writer's lease (another replica takes over when it
// lapses or is resigned). The cursor moves past a batch only after the writer wrote it, so a
// crash re-sends at most one batch, which the writer's unique key absorbs.
type HistoryDelivery struct {
	q     *Queue
	w     HistoryWriter
	opts  HistoryDeliveryOptions
	owner string
	wake  chan struct{}
}

// NewHistoryDelivery prepares delivery of the history log to w.
func NewHistoryDelivery(q *Queue, w HistoryWriter, opts HistoryDeliveryOptions) *HistoryDelivery {
	defaults.Positive(&opts.BatchSize, BatchSizeDefault)
	defaults.Positive(&opts.Lease, LeaseDefault)
	defaults.Positive(&opts.PollInterval, PollIntervalDefault)
	defaults.Positive(&opts.MaxBackoff, MaxBackoffDefault)
	defaults.Positive(&opts.Linger, HistoryLingerDefault)
	defaults.Log(&opts.Log)
	return &HistoryDelivery{q: q, w: w, opts: opts, wake: make(chan struct{}, 1),
		owner: leaseowner.New()}
}

// Notify wakes the delivery (called after a commit kept versions).
func (h *HistoryDelivery) Notify() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// Run delivers until ctx is done, then gives the lease up.
func (h *HistoryDelivery) Run(ctx context.Context) {
	log := h.opts.Log.WithField("sink", h.w.Name())
	defer func() {
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := h.q.ResignHistory(rctx, h.w.Name(), h.owner); err != nil {
			log.WithError(err).Debug("giving up the history delivery lease failed; it will lapse")
		}
	}()
	bo := retryBackoff(h.opts.MaxBackoff)
	for {
		err := h.w.Start(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		wait := bo.NextBackOff()
		log.WithError(err).WithField("retry_in", wait.String()).Warn("row history destination not ready; its delivery waits")
		if !sleep(ctx, wait) {
			return
		}
	}
	bo.Reset()
	var (
		leader   bool
		leaseEnd time.Time
		cursor   Pos
	)
	for ctx.Err() == nil {
		if !leader || time.Until(leaseEnd) < h.opts.Lease*2/3 {
			held, cur, left, err := h.q.AcquireHistory(ctx, h.w.Name(), h.owner, h.opts.Lease)
			switch {
			case err != nil:
				if ctx.Err() == nil {
					log.WithError(err).Warn("taking the history delivery lease failed")
				}
				leader = false
				sleep(ctx, bo.NextBackOff())
				continue
			case !held:
				leader = false
				sleep(ctx, min(h.opts.Lease/3, standbyPoll))
				continue
			}
			if !leader {
				cursor = cur
				log.WithFields(logrus.Fields{"tx": cur.Tx, "seq": cur.Seq}).Info("delivering row history from the settled cursor")
			}
			leader, leaseEnd = true, time.Now().Add(left)
		}
		vs, err := h.q.ReadHistory(ctx, cursor, h.opts.BatchSize)
		if err != nil {
			if ctx.Err() == nil {
				log.WithError(err).Warn("reading the history log failed")
				sleep(ctx, bo.NextBackOff())
			}
			continue
		}
		if len(vs) == 0 {
			select {
			case <-ctx.Done():
			case <-h.wake:
				sleep(ctx, h.opts.Linger)
			case <-time.After(h.opts.PollInterval):
			}
			continue
		}
		// The write must end before the lease could lapse, or another replica could write
		// the same versions (harmless, but it would also move the cursor).
		wctx, cancel := context.WithTimeout(ctx, time.Duration(float64(time.Until(leaseEnd))*applyShare))
		err = h.w.WriteHistory(wctx, vs)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			wait := bo.NextBackOff()
			log.WithError(err).WithField("retry_in", wait.String()).Warn("writing row history failed; will retry")
			sleep(ctx, wait)
			continue
		}
		bo.Reset()
		end := vs[len(vs)-1].Pos
		sctx, scancel := context.WithTimeout(context.Background(), h.opts.Lease)
		left, err := h.q.SettleHistory(sctx, h.w.Name(), h.owner, h.opts.Lease, end)
		scancel()
		switch {
		case errors.Is(err, ErrLeaseLost):
			log.Warn("stopped delivering row history: another replica took the lease")
			leader = false
			continue
		case err != nil:
			log.WithError(err).Warn("settling row history failed; it resumes from the settled cursor (writing again is idempotent)")
			leader = false
			sleep(ctx, bo.NextBackOff())
			continue
		}
		cursor, leaseEnd = end, time.Now().Add(left)
		if m := h.opts.Metrics; m != nil {
			for _, v := range vs {
				m.HistoryDelivered.WithLabelValues(v.Key.String()).Inc()
			}
		}
		if len(vs) < h.opts.BatchSize {
			sleep(ctx, h.opts.Linger) // caught up: let the next versions gather
		}
	}
}
