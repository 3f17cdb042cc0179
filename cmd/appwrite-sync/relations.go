package main

import (
	"context"
	"time"

	"github.com/appwrite-sync/appwrite-sync/connector/ledger"
)

// newFanout builds the relationship fan-out worker; nil when no table declares a
// relationship.
func (a *app) newFanout() *ledger.Fanout {
	if a.cfg.Mapping == nil || !a.cfg.Mapping.HasRelationships() {
		return nil
	}
	return ledger.NewFanout(a.logPool, a.cfg.Mapping, ledger.FanoutOptions{Sinks: a.sinkNames(), Notify: a.engine.Notify,
		Metrics: a.metrics, Log: a.log})
}

// fanoutGauge refreshes the fan-out queue gauge.
func (a *app) fanoutGauge(ctx context.Context) {
	if a.fanout == nil {
		return
	}
	if n, err := a.admin.FanoutQueued(ctx); err == nil {
		a.metrics.FanoutQueue.Set(float64(n))
	}
}

// fanoutView is the "fanout" part of /admin/status (and of `status`).
type fanoutView struct {
	// Queued counts the changed related rows whose linking rows are not all re-queued yet.
	Queued int64 `json:"queued"`
}

// fanoutStatus adds "fanout" to the status when a table declares a relationship (-1 queued
// when the state store did not answer).
func (a *app) fanoutStatus(out map[string]any) {
	if a.fanout == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	n, err := a.admin.FanoutQueued(ctx)
	if err != nil {
		n = -1
	} else {
		a.metrics.FanoutQueue.Set(float64(n))
	}
	out["fanout"] = fanoutView{Queued: n}
}

// rebuildLinks reads the links of recorded rows again when a table's relationships changed,
// before the re-projection that change causes joins them.
func (a *app) rebuildLinks(ctx context.Context) error {
	n, err := a.admin.RebuildLinks(ctx, a.cfg.Mapping)
	if n > 0 {
		a.log.WithField("rows", n).Info("relationships changed: read the links of recorded rows again")
	}
	return err
}
