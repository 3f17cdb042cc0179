package main

import (
	"context"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/connector/ledger"
	"github.com/appwrite-sync/appwrite-sync/connector/sink/pgsink"
	"github.com/appwrite-sync/appwrite-sync/mapping"
)

// historySweeper removes a table's row history past a cutoff from the warehouse
// (*pgsink.History); Name is its delivery's id in the state store.
type historySweeper interface {
	Name() string
	Sweep(ctx context.Context, t *mapping.Table, cutoff time.Time) (int64, error)
}

// historyPolicy is the recorder's RecorderOptions.History: the tables with postgres.history.
func (a *app) historyPolicy(k connector.TableKey) (ledger.HistoryPolicy, bool) {
	t := a.cfg.Mapping.Lookup(k)
	if t == nil || t.PG == nil || t.PG.History == nil {
		return ledger.HistoryPolicy{}, false
	}
	return ledger.HistoryPolicy{Retention: t.PG.History.Retention}, true
}

// buildHistory prepares the delivery of the row history to the warehouse, when a table keeps
// one; nil otherwise.
func (a *app) buildHistory(log *logrus.Entry) *ledger.HistoryDelivery {
	if !pgsink.HasHistory(a.cfg.Mapping) {
		return nil
	}
	w := pgsink.NewHistory(a.wh, a.cfg.Mapping, log)
	a.historyWriter = w
	return ledger.NewHistoryDelivery(ledger.NewQueue(a.logPool), w, ledger.HistoryDeliveryOptions{
		BatchSize: a.cfg.Warehouse.BatchSize, Lease: a.cfg.Delivery.Lease, PollInterval: a.cfg.Delivery.PollInterval,
		MaxBackoff: a.cfg.Delivery.MaxBackoff, Metrics: a.metrics, Log: log})
}

// notify wakes delivery after a commit that queued work: the sinks' engine, the row history
// and the relationship fan-out.
func (a *app) notify() {
	a.engine.Notify()
	if a.history != nil {
		a.history.Notify()
	}
	if a.fanout != nil {
		a.fanout.Notify()
	}
}

// sweepHistory removes the versions past each table's postgres.history.retention, from the
// state store and from the warehouse (hourly, with the other sweeps).
func (a *app) sweepHistory(ctx context.Context) {
	if a.historyWriter == nil {
		return
	}
	for _, t := range a.cfg.Mapping.Tables {
		if t.PG == nil || t.PG.History == nil || t.PG.History.Retention <= 0 || t.Database == "*" {
			continue
		}
		key := t.Key()
		cutoff := time.Now().Add(-t.PG.History.Retention)
		log := a.log.WithFields(logrus.Fields{"table": key.String(), "retention": t.PG.History.Retention.String()})
		n, err := a.admin.SweepHistory(ctx, key, cutoff)
		a.metrics.HistoryRemoved.WithLabelValues(key.String(), "state").Add(float64(n))
		if err != nil && ctx.Err() == nil {
			log.WithError(err).Warn("removing row history past its retention from the state store failed")
		}
		n, err = a.historyWriter.Sweep(ctx, t, cutoff)
		a.metrics.HistoryRemoved.WithLabelValues(key.String(), "warehouse").Add(float64(n))
		if err != nil && ctx.Err() == nil {
			log.WithError(err).Warn("removing row history past its retention from the warehouse failed")
		}
	}
}

// backlogView is the "history" and "audit" parts of /admin/status (and of `status`): what
// their deliveries have not written to the warehouse yet.
type backlogView struct {
	// Pending is -1 when the state store did not answer.
	Pending    int64   `json:"pending"`
	LagSeconds float64 `json:"lag_seconds"`
}

// logBacklogs reads the backlogs of the row history (when a table keeps one) and of the
// audit log (when audit.events is set), keyed "history" and "audit", and refreshes their
// gauges.
func (a *app) logBacklogs(ctx context.Context) map[string]backlogView {
	out := map[string]backlogView{}
	add := func(log string, n int64, lag time.Duration, err error) {
		if err != nil {
			if ctx.Err() == nil {
				a.log.WithError(err).WithField("log", log).Debug("reading the delivery backlog failed")
			}
			out[log] = backlogView{Pending: -1}
			return
		}
		a.metrics.LogPending.WithLabelValues(log).Set(float64(n))
		a.metrics.LogLag.WithLabelValues(log).Set(lag.Seconds())
		out[log] = backlogView{Pending: n, LagSeconds: lag.Seconds()}
	}
	if a.historyWriter != nil {
		n, lag, err := a.admin.HistoryBacklog(ctx, a.historyWriter.Name())
		add("history", n, lag, err)
	}
	if a.audit != nil {
		n, lag, err := a.audit.del.Backlog(ctx)
		add("audit", n, lag, err)
	}
	return out
}
