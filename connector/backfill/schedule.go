package backfill

import (
	"context"
	"time"

	"github.com/appwrite-sync/appwrite-sync/internal/periodic"
	"github.com/sirupsen/logrus"
)

// ScheduleOptions says how often every table is reconciled. Zero turns a mode off.
type ScheduleOptions struct {
	// IncrementalEvery queues an incremental job per table when no job of any mode was
	// created for it within this time (a full job reconciles too).
	IncrementalEvery time.Duration
	// FullEvery queues a full job per table when no full job was created within this time.
	FullEvery time.Duration
	// Check is how often due jobs are looked for. Default: a quarter of the shorter interval,
	// between 100ms and one minute.
	Check time.Duration
}

// Scheduler queues reconcile jobs for every table of Manager.Tables. When is decided from the
// jobs in the state store, not from this process's memory, so a restart does not reset the
// schedule and replicas do not multiply the jobs.
type Scheduler struct {
	m    *Manager
	opts ScheduleOptions
	log  *logrus.Entry
}

// NewScheduler returns a scheduler; Run does the work.
func NewScheduler(m *Manager, opts ScheduleOptions) *Scheduler {
	if opts.Check <= 0 {
		shortest := opts.IncrementalEvery
		if shortest <= 0 || (opts.FullEvery > 0 && opts.FullEvery < shortest) {
			shortest = opts.FullEvery
		}
		opts.Check = min(max(shortest/4, 100*time.Millisecond), time.Minute)
	}
	return &Scheduler{m: m, opts: opts, log: m.log.WithField("component", "reconcile-schedule")}
}

// Enabled reports whether any mode is scheduled.
func (s *Scheduler) Enabled() bool { return s.opts.IncrementalEvery > 0 || s.opts.FullEvery > 0 }

// Run queues due jobs until ctx ends. It returns at once when nothing is scheduled.
func (s *Scheduler) Run(ctx context.Context) {
	if !s.Enabled() {
		return
	}
	s.log.WithFields(logrus.Fields{"incremental_every": s.opts.IncrementalEvery.String(), "full_every": s.opts.FullEvery.String(),
		"tables": len(s.m.Tables())}).Info("reconcile schedule active")
	periodic.Now(ctx, s.opts.Check, func() bool { s.tick(ctx); return true })
}

func (s *Scheduler) tick(ctx context.Context) {
	for _, k := range s.m.Tables() {
		if s.opts.FullEvery > 0 {
			id, err := s.m.enqueueIfDue(ctx, k, ModeFull, TriggerSchedule, s.opts.FullEvery, ModeFull)
			if err != nil {
				if ctx.Err() == nil {
					s.log.WithError(err).WithField("table", k.String()).Warn("scheduling a full reconcile failed")
				}
				continue
			}
			if id != "" {
				continue
			}
		}
		if s.opts.IncrementalEvery > 0 {
			if _, err := s.m.enqueueIfDue(ctx, k, ModeIncremental, TriggerSchedule, s.opts.IncrementalEvery, ModeFull, ModeIncremental); err != nil && ctx.Err() == nil {
				s.log.WithError(err).WithField("table", k.String()).Warn("scheduling an incremental reconcile failed")
			}
		}
	}
}
