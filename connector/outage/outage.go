// Package outage rides out state store outages (issue 22). While the state store cannot
// commit, a verified change goes to the local spool (state.spool_dir) and is answered 200 once
// fsync'd there; the drainer records the spool into the ledger when the store is back. A change
// that neither could take is answered 503, and its table is remembered (the repair list) so
// that an incremental reconcile repairs it once the store is healthy. The same list takes every
// table when a run died without stopping (its unanswered requests are lost), when the spool
// dropped a corrupt record, and when a webhook Appwrite had disabled is enabled again.
//
// Order: while the spool holds changes, webhooks arriving after the store came back are
// recorded directly and may reach the ledger before older spooled changes of the same row.
// That cannot regress a row: the ledger keeps, per row, the greatest version it was ever
// offered (connector.Version), so the spooled older version is then Stale and changes
// nothing, and each sink receives the row's versions in the order the ledger advanced them,
// which only ever increases. Arrival order in the drain only keeps the work small.
package outage

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/sirupsen/logrus"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/connector/backfill"
	"github.com/appwrite-sync/appwrite-sync/connector/ledger"
	"github.com/appwrite-sync/appwrite-sync/connector/metrics"
	"github.com/appwrite-sync/appwrite-sync/connector/spool"
	"github.com/appwrite-sync/appwrite-sync/connector/webhook"
)

// drainBatch is how many spooled changes one ledger transaction records.
const drainBatch = 512

// drainEvery is how often the drainer looks at the state store while the spool holds changes
// or refusals wait for repair (a failed commit wakes it at once).
var drainEvery = time.Second

// runningFile exists in the spool directory while serve runs; its modification time is
// renewed every heartbeat. Found at start, it means the last run died (a crash, SIGKILL, OOM):
// requests in flight then were never answered 2xx, and Appwrite does not retry them.
const runningFile = "running"

// heartbeat is how often runningFile's time is renewed (a variable for tests).
var heartbeat = 10 * time.Second

// crashWindow is how far before the last heartbeat a dead run's unanswered requests may have
// arrived: a heartbeat, plus the 15 s Appwrite waits for an answer, plus a margin.
func crashWindow() time.Duration { return heartbeat + 20*time.Second }

// quarantineWebhook names spooled changes the state store refused for their content when they
// were drained (the quarantine wants an endpoint name; the spool does not keep it).
const quarantineWebhook = "spool"

// Options configures a Guard. State, Recorder, Admin, Metrics and Log are required.
type Options struct {
	// Dir is the spool directory (state.spool_dir); "" runs without a spool: a change the
	// state store cannot commit is answered 503.
	Dir string
	// MaxBytes caps the spool (state.spool_max_bytes).
	MaxBytes int64
	// MaxBodyBytes is the largest webhook body (limits.max_body_bytes): the service stays
	// ready through an outage only while the spool has room for one.
	MaxBodyBytes int64
	// State is the state store, asked whether it is ready before a drain and by Ready.
	State    *pgxpool.Pool
	Recorder *ledger.Recorder
	// Admin quarantines spooled changes the state store refuses for their content.
	Admin *ledger.Admin
	// Backfill queues the reconciles that repair refused changes; nil when the Appwrite API is
	// not configured: the repair list is then only reported (Status) and kept in memory.
	Backfill *backfill.Manager
	// Tables are the mapped tables, each reconciled when every table must be (a wildcard
	// database is left out: a reconcile reads named tables).
	Tables  []connector.TableKey
	Metrics *metrics.Metrics
	Log     *logrus.Entry
}

// Guard records verified changes through state store outages: in the ledger when it commits,
// else in the spool, else it answers 503 and puts the table on the repair list. Run drains the
// spool and repairs the list.
type Guard struct {
	o     Options
	log   *logrus.Entry
	spool *spool.Spool // nil: off, or it could not be opened (openErr says why)
	// openErr is why the configured spool is not in use.
	openErr error
	// degraded is set when a commit failed and the spool took the change: later changes go
	// straight to the spool (no attempt at the state store each) until a drain succeeds.
	degraded atomic.Bool
	wake     chan struct{}

	repairs *repairList
	running string // runningFile's path; "" without a spool directory
}

// New opens the spool when configured. A spool that cannot be opened is logged and left out:
// the service then answers 503 while the state store is down, as without one.
func New(o Options) *Guard {
	g := &Guard{o: o, log: o.Log.WithField("component", "outage"), wake: make(chan struct{}, 1)}
	g.repairs = &repairList{log: g.log, metrics: o.Metrics, list: map[string]refusal{}}
	if o.Dir == "" {
		return g
	}
	s, err := spool.Open(spool.Options{Dir: o.Dir, MaxBytes: o.MaxBytes, Log: o.Log})
	if err != nil {
		g.openErr = err
		g.log.WithError(err).Error("the spool cannot be used: while the state store is down webhooks are answered 503")
		return g
	}
	g.spool = s
	if st := s.Stats(time.Now()); st.Records > 0 {
		// Later changes join them until they are drained, in arrival order.
		g.degraded.Store(true)
		g.log.WithFields(logrus.Fields{"changes": st.Records, "bytes": st.Bytes}).Warn("the spool holds changes from an earlier run: draining them into the state store")
	}
	if o.Backfill != nil {
		// Only a reconcile takes a table off the list: without the API it lives in memory
		// (status shows it until the next start). The spool's lock makes the file this
		// process's.
		if err := g.repairs.load(filepath.Join(o.Dir, refusedFile)); err != nil {
			g.log.WithError(err).Warn("reading the refused tables failed; refused changes before this start are repaired only by a scheduled reconcile")
		}
	}
	// The spool's lock makes the directory this process's.
	g.running = filepath.Join(o.Dir, runningFile)
	if fi, err := os.Stat(g.running); err == nil {
		g.markAll(fi.ModTime().Add(-crashWindow()), backfill.TriggerRepair, "the last run did not stop cleanly: requests it had not answered are lost (Appwrite does not retry them), so every table is reconciled from shortly before it died", "crash")
	}
	if err := os.WriteFile(g.running, []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o600); err != nil {
		g.log.WithError(err).Warn("writing the run marker to the spool directory failed: a crash of this run will not be repaired automatically")
		g.running = ""
	}
	if s.Dropped() > 0 {
		// A corrupt record may have been acknowledged: repair every table from the start of
		// the oldest change still in the spool, or now.
		at := time.Now()
		if st := s.Stats(at); st.Records > 0 {
			at = at.Add(-time.Duration(st.OldestAgeSeconds * float64(time.Second)))
		}
		g.markAll(at, backfill.TriggerRepair, "the spool had a corrupt record that may have been acknowledged: reconciling every table from the oldest change it still holds", "spool_corrupt")
	}
	return g
}

// Record stores ch: in the ledger when the state store commits, else in the spool. Healthy,
// this is one RecordResult call: the spool costs nothing.
//
// An audited change (ch.Audit) never goes to the spool: the spool keeps row changes only, so
// it is recorded with its entry in the state store or refused (503).
func (g *Guard) Record(ctx context.Context, ch connector.Change) (webhook.Recorded, error) {
	if g.spool != nil && g.degraded.Load() && ch.Audit == nil {
		return webhook.RecordedSpooled, g.toSpool(ctx, ch, nil)
	}
	res, err := g.o.Recorder.RecordResult(ctx, ch)
	if err == nil || connector.IsPermanent(err) {
		switch res {
		case ledger.Stale:
			return webhook.RecordedStale, err
		case ledger.Duplicate:
			return webhook.RecordedDuplicate, err
		}
		return webhook.RecordedNew, err
	}
	if g.spool == nil || ch.Audit != nil {
		reason := "spool_off"
		switch {
		case ch.Audit != nil:
			reason = "audit_unavailable"
		case g.openErr != nil:
			reason = "spool_unwritable"
		}
		g.Refuse(ch.Key, time.Now(), reason)
		return webhook.RecordedNew, err
	}
	return webhook.RecordedSpooled, g.toSpool(ctx, ch, err)
}

func (g *Guard) toSpool(ctx context.Context, ch connector.Change, cause error) error {
	if !g.degraded.Swap(true) {
		g.log.WithError(cause).Warn("the state store cannot commit: taking webhooks into the spool until it is back")
	}
	g.kick()
	now := time.Now()
	err := g.spool.Append(ctx, spool.Entry{Change: ch, ReceivedAt: now})
	if err == nil {
		g.o.Metrics.SpoolAppended.Inc()
		return nil
	}
	reason := "spool_unwritable"
	if errors.Is(err, spool.ErrFull) {
		reason = "spool_full"
	}
	g.Refuse(ch.Key, now, reason)
	if cause == nil {
		cause = errors.New("state store down")
	}
	return fmt.Errorf("%w: %v; the spool did not take the change either: %v", ledger.ErrUnavailable, cause, err)
}

func (g *Guard) kick() {
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

// Refuse remembers that a change of key arriving at `at` was answered 503 (reason labels the
// metric): Appwrite does not retry it, so the table is reconciled from then.
func (g *Guard) Refuse(key connector.TableKey, at time.Time, reason string) {
	g.o.Metrics.Refused.WithLabelValues(reason).Inc()
	g.repairs.mark(key, at, backfill.TriggerRepair, "a verified change was answered 503 (Appwrite does not retry it): the table is reconciled from this moment once the state store is healthy", reason)
}

// WebhookReenabled puts every table on the repair list from disabledSince: Appwrite dropped the
// events of every table while the webhook was disabled. It is backfill.ProbeOptions.Reenabled;
// a table stays on the list until a job could be queued.
func (g *Guard) WebhookReenabled(_ context.Context, _ string, disabledSince time.Time) {
	g.markAll(disabledSince, backfill.TriggerProbe, "the webhook was disabled: reconciling the table from then", "webhook_disabled")
}

// markAll puts every mapped table on the list from `at`.
func (g *Guard) markAll(at time.Time, trigger, msg, reason string) {
	for _, k := range g.o.Tables {
		if k.Database != "*" {
			g.repairs.mark(k, at, trigger, msg, reason)
		}
	}
	g.kick()
}

// Run drains the spool and repairs refusals until ctx ends.
func (g *Guard) Run(ctx context.Context) {
	t := time.NewTicker(drainEvery)
	defer t.Stop()
	hb := time.NewTicker(heartbeat)
	defer hb.Stop()
	for {
		g.step(ctx)
		select {
		case <-ctx.Done():
			return
		case <-g.wake:
		case <-t.C:
		case <-hb.C:
			if g.running != "" {
				now := time.Now()
				if err := os.Chtimes(g.running, now, now); err != nil {
					g.log.WithError(err).Debug("renewing the run marker failed")
				}
			}
		}
	}
}

func (g *Guard) step(ctx context.Context) {
	if g.spool != nil {
		g.drain(ctx) // cheap when empty: it also truncates what an earlier drain left
		g.gauges()
	}
	g.repair(ctx)
}

// drain records the spool into the ledger; success ends the degraded mode.
func (g *Guard) drain(ctx context.Context) bool {
	if g.degraded.Load() {
		// Ask before trying a commit: a failed one logs a warning, once a second here.
		rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err := ledger.Ready(rctx, g.o.State)
		cancel()
		if err != nil {
			return false
		}
	}
	n, err := g.spool.Drain(ctx, drainBatch, g.recordBatch)
	if n > 0 {
		g.o.Metrics.SpoolDrained.Add(float64(n))
	}
	if err != nil {
		if ctx.Err() == nil {
			g.log.WithError(err).WithField("drained", n).Debug("draining the spool failed; trying again")
		}
		return false
	}
	if g.degraded.Swap(false) || n > 0 {
		g.log.WithField("changes", n).Info("the state store is back: the spool is drained")
	}
	return true
}

// recordBatch records spooled changes through the ledger's version guard. A change the state
// store refuses for its content is quarantined (with its row as the body), as the webhook
// handler does, so it cannot block the drain.
func (g *Guard) recordBatch(ctx context.Context, es []spool.Entry) error {
	chs := make([]connector.Change, len(es))
	for i := range es {
		chs[i] = es[i].Change
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err := g.o.Recorder.RecordBatch(cctx, chs)
	if err == nil || !connector.IsPermanent(err) {
		return err
	}
	for _, e := range es {
		_, err := g.o.Recorder.RecordResult(cctx, e.Change)
		if err == nil {
			continue
		}
		if !connector.IsPermanent(err) {
			return err
		}
		if _, err := g.o.Admin.Quarantine(cctx, quarantineWebhook, err.Error(), map[string]string{webhook.HeaderEvents: e.Change.Event}, e.Change.Row); err != nil {
			return err
		}
		g.o.Metrics.Quarantined.Inc()
	}
	return nil
}

func (g *Guard) gauges() {
	st := g.spool.Stats(time.Now())
	g.o.Metrics.SpoolBytes.Set(float64(st.Bytes))
	g.o.Metrics.SpoolRecords.Set(float64(st.Records))
	g.o.Metrics.SpoolOldestAge.Set(st.OldestAgeSeconds)
}

// repair queues an incremental reconcile of each table on the list once the state store is
// healthy, when the Appwrite API is configured; a table that has a job running is tried again
// after it ends.
func (g *Guard) repair(ctx context.Context) {
	pending := g.repairs.snapshot()
	if len(pending) == 0 || g.o.Backfill == nil || g.degraded.Load() {
		return
	}
	for _, table := range slices.Sorted(maps.Keys(pending)) {
		key, err := connector.ParseTableKey(table)
		var id string
		if err == nil {
			qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			id, err = g.o.Backfill.EnqueueSince(qctx, key, pending[table].At, pending[table].Trigger)
			cancel()
		}
		var active *backfill.ActiveError
		var nm *backfill.NotMappedError
		switch {
		case errors.As(err, &active):
			continue
		case errors.As(err, &nm):
			g.log.WithError(err).WithField("table", table).Warn("a refused table is no longer mapped: not reconciling it")
		case err != nil:
			if ctx.Err() == nil {
				g.log.WithError(err).WithField("table", table).Debug("queueing the repair of refused changes failed; trying again")
			}
			return
		default:
			g.o.Metrics.Repairs.Inc()
			g.log.WithFields(logrus.Fields{"table": table, "job": id, "from": pending[table].At, "trigger": pending[table].Trigger}).Warn("repairing refused or dropped changes: incremental reconcile queued")
		}
		g.repairs.done(table, pending[table])
	}
}

// Close drains what it can within timeout (call it after the listeners closed, so no request
// appends any more) and closes the spool; what is left is drained at the next start.
func (g *Guard) Close(timeout time.Duration) {
	if g.running != "" {
		if err := os.Remove(g.running); err != nil {
			g.log.WithError(err).Warn("removing the run marker failed: the next start reconciles every table")
		}
	}
	if g.spool == nil {
		return
	}
	if !g.spool.Empty() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		g.drain(ctx)
		cancel()
	}
	if st := g.spool.Stats(time.Now()); st.Records > 0 {
		g.log.WithFields(logrus.Fields{"changes": st.Records, "bytes": st.Bytes, "dir": st.Dir}).Warn("stopping with changes in the spool: they are drained at the next start (keep the spool directory)")
	}
	if err := g.spool.Close(); err != nil {
		g.log.WithError(err).Warn("closing the spool failed")
	}
}

// Ready is the state store's readiness (ledger.Ready), excused while the spool takes webhooks
// in its place (readyDespite): the load balancer then keeps routing here.
func (g *Guard) Ready(ctx context.Context) error {
	err := ledger.Ready(ctx, g.o.State)
	if err != nil && g.readyDespite(err) {
		return nil
	}
	return err
}

// readyDespite reports whether the service may answer ready although the state store is not:
// it is only unreachable, and the spool takes webhooks meanwhile, with room for a tenth of its
// cap or a body of the largest size, whichever is less.
func (g *Guard) readyDespite(err error) bool {
	var nr *ledger.NotReadyError
	room := min(g.o.MaxBodyBytes, g.o.MaxBytes/10)
	return g.spool != nil && errors.As(err, &nr) && nr.Reason == ledger.ReasonUnreachable && g.spool.Accepting(room)
}

// Status is the outage part of GET /admin/status: the spool and the repair list.
func (g *Guard) Status() map[string]any {
	sp := map[string]any{"enabled": g.spool != nil}
	switch {
	case g.spool != nil:
		st := g.spool.Stats(time.Now())
		state := "idle"
		if g.degraded.Load() {
			state = "spooling"
		} else if st.Records > 0 {
			state = "draining"
		}
		sp["state"], sp["dir"], sp["bytes"], sp["changes"], sp["max_bytes"], sp["oldest_age_seconds"] =
			state, st.Dir, st.Bytes, st.Records, st.MaxBytes, st.OldestAgeSeconds
		if st.Error != "" {
			sp["error"] = st.Error
		}
	case g.openErr != nil:
		sp["error"] = g.openErr.Error()
	}
	refused := make(map[string]time.Time)
	for k, v := range g.repairs.snapshot() {
		refused[k] = v.At
	}
	rep := map[string]any{"refused_since": refused}
	if len(refused) > 0 {
		if g.o.Backfill != nil {
			rep["action"] = "an incremental reconcile of each table is queued once the state store is healthy"
		} else {
			rep["action"] = "the Appwrite API is not configured: run POST /admin/backfill {\"table\": ..., \"mode\": \"incremental\"} for each table (or set appwrite.project and appwrite.api_key)"
		}
	}
	return map[string]any{"spool": sp, "repair": rep}
}
