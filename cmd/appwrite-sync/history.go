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
// (*pgsink.History).
type historySweeper interface {
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
