package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/connector/backfill"
	"github.com/appwrite-sync/appwrite-sync/connector/ledger"
	"github.com/appwrite-sync/appwrite-sync/connector/spool"
	"github.com/appwrite-sync/appwrite-sync/connector/webhook"
)

// State store outages (issue 22). While the state store cannot commit, a verified change goes
// to the local spool (state.spool_dir) and is answered 200 once fsync'd there; the drainer
// records the spool into the ledger when the store is back. A change that neither could take
// is answered 503, and its table is remembered (refusals) so that an incremental reconcile
// repairs it once the store is healthy.
//
// Order: while the spool holds changes, webhooks arriving after the store came back are
// recorded directly and may reach the ledger before older spooled changes of the same row.
// That cannot regress a row: the ledger keeps, per row, the greatest version it was ever
// offered (connector.Version), so the spooled older version is then Stale and changes
// nothing, and each sink receives the row's versions in the order the ledger advanced them,
// which only ever increases. Arrival order in the drain only keeps the work small.

// drainBatch is how many spooled changes one ledger transaction records.
const drainBatch = 512

// drainEvery is how often the drainer looks at the state store while the spool holds changes
// or refusals wait for repair (a failed commit wakes it at once).
var drainEvery = time.Second

// refusedFile keeps the refusals across restarts, next to the spool.
const refusedFile = "refused.json"

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

type outage struct {
	a     *app
	log   *logrus.Entry
	spool *spool.Spool // nil: off, or it could not be opened (openErr says why)
	// openErr is why the configured spool is not in use.
	openErr error
	// degraded is set when a commit failed and the spool took the change: later changes go
	// straight to the spool (no attempt at the state store each) until a drain succeeds.
	degraded atomic.Bool
	wake     chan struct{}

	mu      sync.Mutex
	refused map[string]refusal // table -> from when to reconcile it
	file    string             // "" when refusals are kept in memory only
	running string             // runningFile's path; "" without a spool directory
}

// newOutage opens the spool when configured. A spool that cannot be opened is logged and left
// out: the service then answers 503 while the state store is down, as without one.
func newOutage(a *app) *outage {
	o := &outage{a: a, log: a.log.WithField("component", "outage"), wake: make(chan struct{}, 1), refused: map[string]refusal{}}
	dir := a.cfg.State.SpoolDir
	if dir == "" {
		return o
	}
	s, err := spool.Open(spool.Options{Dir: dir, MaxBytes: a.cfg.State.SpoolMaxBytes, Log: a.log})
	if err != nil {
		o.openErr = err
		o.log.WithError(err).Error("the spool cannot be used: while the state store is down webhooks are answered 503")
	} else {
		o.spool = s
		if st := s.Stats(time.Now()); st.Records > 0 {
			// Later changes join them until they are drained, in arrival order.
			o.degraded.Store(true)
			o.log.WithFields(logrus.Fields{"changes": st.Records, "bytes": st.Bytes}).Warn("the spool holds changes from an earlier run: draining them into the state store")
		}
	}
	if a.backfill != nil && o.spool != nil {
		// Only a reconcile takes a table off the list: without the API it lives in memory
		// (status shows it until the next start). The spool's lock makes the file this
		// process's.
		o.file = filepath.Join(dir, refusedFile)
		if err := o.loadRefused(); err != nil {
			o.log.WithError(err).Warn("reading the refused tables failed; refused changes before this start are repaired only by a scheduled reconcile")
		}
	}
	if o.spool != nil { // the spool's lock makes the directory this process's
		o.running = filepath.Join(dir, runningFile)
		if fi, err := os.Stat(o.running); err == nil {
			o.markAll(fi.ModTime().Add(-crashWindow()), backfill.TriggerRepair, "the last run did not stop cleanly: requests it had not answered are lost (Appwrite does not retry them), so every table is reconciled from shortly before it died", "crash")
		}
		if err := os.WriteFile(o.running, []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o600); err != nil {
			o.log.WithError(err).Warn("writing the run marker to the spool directory failed: a crash of this run will not be repaired automatically")
			o.running = ""
		}
	}
	if o.spool != nil && o.spool.Dropped() > 0 {
		// A corrupt record may have been acknowledged: repair every table from the start of
		// the oldest change still in the spool, or now.
		at := time.Now()
		if st := o.spool.Stats(at); st.Records > 0 {
			at = at.Add(-time.Duration(st.OldestAgeSeconds * float64(time.Second)))
		}
		o.markAll(at, backfill.TriggerRepair, "the spool had a corrupt record that may have been acknowledged: reconciling every table from the oldest change it still holds", "spool_corrupt")
	}
	return o
}

// record stores ch: in the ledger when the state store commits, else in the spool. Healthy,
// this is one Record call: the spool costs nothing.
//
// An audited change (ch.Audit) never goes to the spool: the spool keeps row changes only, so
// it is recorded with its entry in the state store or refused (503).
func (o *outage) record(ctx context.Context, ch connector.Change) (webhook.Recorded, error) {
	if o.spool != nil && o.degraded.Load() && ch.Audit == nil {
		return webhook.RecordedSpooled, o.toSpool(ctx, ch, nil)
	}
	res, err := o.a.recorder.RecordResult(ctx, ch)
	if err == nil || connector.IsPermanent(err) {
		switch res {
		case ledger.Stale:
			return webhook.RecordedStale, err
		case ledger.Duplicate:
			return webhook.RecordedDuplicate, err
		}
		return webhook.RecordedNew, err
	}
	if o.spool == nil || ch.Audit != nil {
		reason := "spool_off"
		switch {
		case ch.Audit != nil:
			reason = "audit_unavailable"
		case o.openErr != nil:
			reason = "spool_unwritable"
		}
		o.refuse(ch.Key, time.Now(), reason)
		return webhook.RecordedNew, err
	}
	return webhook.RecordedSpooled, o.toSpool(ctx, ch, err)
}

func (o *outage) toSpool(ctx context.Context, ch connector.Change, cause error) error {
	if !o.degraded.Swap(true) {
		o.log.WithError(cause).Warn("the state store cannot commit: taking webhooks into the spool until it is back")
	}
	o.kick()
	now := time.Now()
	err := o.spool.Append(ctx, spool.Entry{Change: ch, ReceivedAt: now})
	if err == nil {
		o.a.metrics.SpoolAppended.Inc()
		return nil
	}
	reason := "spool_unwritable"
	if errors.Is(err, spool.ErrFull) {
		reason = "spool_full"
	}
	o.refuse(ch.Key, now, reason)
	if cause == nil {
		cause = errors.New("state store down")
	}
	return fmt.Errorf("%w: %v; the spool did not take the change either: %v", ledger.ErrUnavailable, cause, err)
}

func (o *outage) kick() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// refusal is a table's entry on the repair list.
type refusal struct {
	// At is the arrival of the first change refused (or when the webhook was disabled).
	At time.Time `json:"at"`
	// Trigger is the reconcile job's: backfill.TriggerRepair, or TriggerProbe for a webhook
	// that was disabled.
	Trigger string `json:"trigger"`
}

// refuse remembers that a change of key arriving at `at` was answered 503.
func (o *outage) refuse(key connector.TableKey, at time.Time, reason string) {
	o.a.metrics.Refused.WithLabelValues(reason).Inc()
	o.mark(key, at, backfill.TriggerRepair, "a verified change was answered 503 (Appwrite does not retry it): the table is reconciled from this moment once the state store is healthy", reason)
}

// mark puts key on the list of tables to reconcile from `at` (or earlier, when it is there
// already).
func (o *outage) mark(key connector.TableKey, at time.Time, trigger, msg, reason string) {
	table := key.String()
	o.mu.Lock()
	defer o.mu.Unlock()
	if first, ok := o.refused[table]; ok && !at.Before(first.At) {
		return
	}
	o.refused[table] = refusal{At: at, Trigger: trigger}
	o.a.metrics.RefusedTables.Set(float64(len(o.refused)))
	o.log.WithFields(logrus.Fields{"table": table, "reason": reason, "from": at}).Warn(msg)
	if err := o.saveRefusedLocked(); err != nil {
		o.log.WithError(err).Warn("writing the refused tables to the spool directory failed; they are kept in memory only")
	}
}

// loadRefused reads the refusals an earlier run could not repair.
func (o *outage) loadRefused() error {
	b, err := os.ReadFile(o.file)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var m map[string]refusal
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("%s: %w", o.file, err)
	}
	for k, v := range m {
		o.refused[k] = v
	}
	o.a.metrics.RefusedTables.Set(float64(len(o.refused)))
	return nil
}

// saveRefusedLocked writes the refusals (a new file, synced, renamed over the old one). It
// runs once per table and outage, never per request of a table already refused.
func (o *outage) saveRefusedLocked() error {
	if o.file == "" {
		return nil
	}
	if len(o.refused) == 0 {
		err := os.Remove(o.file)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	b, err := json.Marshal(o.refused)
	if err != nil {
		return err
	}
	tmp := o.file + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, o.file); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(o.file)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// run drains the spool and repairs refusals until ctx ends.
func (o *outage) run(ctx context.Context) {
	t := time.NewTicker(drainEvery)
	defer t.Stop()
	hb := time.NewTicker(heartbeat)
	defer hb.Stop()
	for {
		o.step(ctx)
		select {
		case <-ctx.Done():
			return
		case <-o.wake:
		case <-t.C:
		case <-hb.C:
			if o.running != "" {
				now := time.Now()
				if err := os.Chtimes(o.running, now, now); err != nil {
					o.log.WithError(err).Debug("renewing the run marker failed")
				}
			}
		}
	}
}

func (o *outage) step(ctx context.Context) {
	if o.spool != nil {
		o.drain(ctx) // cheap when empty: it also truncates what an earlier drain left
		o.gauges()
	}
	o.repair(ctx)
}

// drain records the spool into the ledger; success ends the degraded mode.
func (o *outage) drain(ctx context.Context) bool {
	if o.degraded.Load() {
		// Ask before trying a commit: a failed one logs a warning, once a second here.
		rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err := ledger.Ready(rctx, o.a.state)
		cancel()
		if err != nil {
			return false
		}
	}
	n, err := o.spool.Drain(ctx, drainBatch, o.recordBatch)
	if n > 0 {
		o.a.metrics.SpoolDrained.Add(float64(n))
	}
	if err != nil {
		if ctx.Err() == nil {
			o.log.WithError(err).WithField("drained", n).Debug("draining the spool failed; trying again")
		}
		return false
	}
	if o.degraded.Swap(false) || n > 0 {
		o.log.WithField("changes", n).Info("the state store is back: the spool is drained")
	}
	return true
}

// recordBatch records spooled changes through the ledger's version guard. A change the state
// store refuses for its content is quarantined (with its row as the body), as the webhook
// handler does, so it cannot block the drain.
func (o *outage) recordBatch(ctx context.Context, es []spool.Entry) error {
	chs := make([]connector.Change, len(es))
	for i := range es {
		chs[i] = es[i].Change
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err := o.a.recorder.RecordBatch(cctx, chs)
	if err == nil || !connector.IsPermanent(err) {
		return err
	}
	for _, e := range es {
		_, err := o.a.recorder.RecordResult(cctx, e.Change)
		if err == nil {
			continue
		}
		if !connector.IsPermanent(err) {
			return err
		}
		if _, err := o.a.admin.Quarantine(cctx, quarantineWebhook, err.Error(), map[string]string{webhook.HeaderEvents: e.Change.Event}, e.Change.Row); err != nil {
			return err
		}
		o.a.metrics.Quarantined.Inc()
	}
	return nil
}

func (o *outage) gauges() {
	st := o.spool.Stats(time.Now())
	o.a.metrics.SpoolBytes.Set(float64(st.Bytes))
	o.a.metrics.SpoolRecords.Set(float64(st.Records))
	o.a.metrics.SpoolOldestAge.Set(st.OldestAgeSeconds)
}

// repair queues an incremental reconcile of each refused table once the state store is
// healthy, when the Appwrite API is configured; a table that has a job running is tried again
// after it ends.
func (o *outage) repair(ctx context.Context) {
	o.mu.Lock()
	pending := make(map[string]refusal, len(o.refused))
	for k, v := range o.refused {
		pending[k] = v
	}
	o.mu.Unlock()
	if len(pending) == 0 || o.a.backfill == nil || o.degraded.Load() {
		return
	}
	tables := make([]string, 0, len(pending))
	for k := range pending {
		tables = append(tables, k)
	}
	sort.Strings(tables)
	for _, table := range tables {
		key, err := connector.ParseTableKey(table)
		var id string
		if err == nil {
			qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			id, err = o.a.backfill.EnqueueSince(qctx, key, pending[table].At, pending[table].Trigger)
			cancel()
		}
		var active *backfill.ActiveError
		var nm *backfill.NotMappedError
		switch {
		case errors.As(err, &active):
			continue
		case errors.As(err, &nm):
			o.log.WithError(err).WithField("table", table).Warn("a refused table is no longer mapped: not reconciling it")
		case err != nil:
			if ctx.Err() == nil {
				o.log.WithError(err).WithField("table", table).Debug("queueing the repair of refused changes failed; trying again")
			}
			return
		default:
			o.a.metrics.Repairs.Inc()
			o.log.WithFields(logrus.Fields{"table": table, "job": id, "from": pending[table].At, "trigger": pending[table].Trigger}).Warn("repairing refused or dropped changes: incremental reconcile queued")
		}
		o.mu.Lock()
		if o.refused[table] == pending[table] {
			delete(o.refused, table)
		}
		o.a.metrics.RefusedTables.Set(float64(len(o.refused)))
		if err := o.saveRefusedLocked(); err != nil {
			o.log.WithError(err).Warn("writing the refused tables failed")
		}
		o.mu.Unlock()
	}
}

// markAll puts every mapped table on the list from `at` (a webhook was disabled: Appwrite
// dropped its events of every table).
func (o *outage) markAll(at time.Time, trigger, msg, reason string) {
	for _, t := range o.a.cfg.Mapping.Tables {
		if k := t.Key(); k.Database != "*" {
			o.mark(k, at, trigger, msg, reason)
		}
	}
	o.kick()
}

// close drains what it can within the shutdown's bound (after the listeners closed, so no
// request appends any more) and closes the spool; what is left is drained at the next start.
func (o *outage) close(timeout time.Duration) {
	if o.running != "" {
		if err := os.Remove(o.running); err != nil {
			o.log.WithError(err).Warn("removing the run marker failed: the next start reconciles every table")
		}
	}
	if o.spool == nil {
		return
	}
	if !o.spool.Empty() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		o.drain(ctx)
		cancel()
	}
	if st := o.spool.Stats(time.Now()); st.Records > 0 {
		o.log.WithFields(logrus.Fields{"changes": st.Records, "bytes": st.Bytes, "dir": st.Dir}).Warn("stopping with changes in the spool: they are drained at the next start (keep the spool directory)")
	}
	if err := o.spool.Close(); err != nil {
		o.log.WithError(err).Warn("closing the spool failed")
	}
}

// readyDespite reports whether /readyz may answer ready although the state store is not: it is
// only unreachable, and the spool takes webhooks meanwhile, with room for a tenth of its cap
// or a body of the largest size, whichever is less.
func (o *outage) readyDespite(err error) bool {
	var nr *ledger.NotReadyError
	room := min(o.a.cfg.Limits.MaxBodyBytes, o.a.cfg.State.SpoolMaxBytes/10)
	return o.spool != nil && errors.As(err, &nr) && nr.Reason == ledger.ReasonUnreachable && o.spool.Accepting(room)
}

// status is the outage part of GET /admin/status.
func (o *outage) status() map[string]any {
	sp := map[string]any{"enabled": o.spool != nil}
	switch {
	case o.spool != nil:
		st := o.spool.Stats(time.Now())
		state := "idle"
		if o.degraded.Load() {
			state = "spooling"
		} else if st.Records > 0 {
			state = "draining"
		}
		sp["state"], sp["dir"], sp["bytes"], sp["changes"], sp["max_bytes"], sp["oldest_age_seconds"] =
			state, st.Dir, st.Bytes, st.Records, st.MaxBytes, st.OldestAgeSeconds
		if st.Error != "" {
			sp["error"] = st.Error
		}
	case o.openErr != nil:
		sp["error"] = o.openErr.Error()
	}
	o.mu.Lock()
	refused := make(map[string]time.Time, len(o.refused))
	for k, v := range o.refused {
		refused[k] = v.At
	}
	o.mu.Unlock()
	rep := map[string]any{"refused_since": refused}
	if len(refused) > 0 {
		if o.a.backfill != nil {
			rep["action"] = "an incremental reconcile of each table is queued once the state store is healthy"
		} else {
			rep["action"] = "the Appwrite API is not configured: run POST /admin/backfill {\"table\": ..., \"mode\": \"incremental\"} for each table (or set appwrite.project and appwrite.api_key)"
		}
	}
	return map[string]any{"spool": sp, "repair": rep}
}
