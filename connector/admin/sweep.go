package admin

import (
	"context"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/appwrite-sync/appwrite-sync/connector/ledger"
	"github.com/appwrite-sync/appwrite-sync/connector/metrics"
)

// Defaults of the quarantine's bounds (quarantine.retention, quarantine.max_rows).
const (
	// QuarantineRetentionDefault is how long a quarantined request is kept, replayed or not.
	QuarantineRetentionDefault = 30 * 24 * time.Hour
	// QuarantineMaxRowsDefault is the most requests kept; the oldest beyond it are removed.
	QuarantineMaxRowsDefault = 100_000
)

// QuarantineSweeper bounds the quarantine: every request keeps its raw body (up to
// limits.max_body_bytes), and a client with a valid signing key sending bodies that never decode
// would otherwise fill the state store.
type QuarantineSweeper struct {
	Ledger    *ledger.Admin
	Retention time.Duration // quarantine.retention; 0 keeps requests forever
	MaxRows   int64         // quarantine.max_rows; 0: no cap
	Metrics   *metrics.Metrics
	Log       *logrus.Entry
}

// Sweep removes the requests past the retention, then the oldest beyond the cap, counts them
// in appwrite_sync_quarantine_dropped_total{reason} and logs a warning when any went: a
// request removed unreplayed is a change that will never be recorded from it (a reconcile
// repairs the sinks).
func (s QuarantineSweeper) Sweep(ctx context.Context) error {
	drops, err := s.Ledger.SweepQuarantine(ctx, s.Retention, s.MaxRows)
	for reason, n := range map[string]int64{"retention": drops.Retention, "cap": drops.Cap} {
		if n == 0 {
			continue
		}
		if s.Metrics != nil {
			s.Metrics.QuarantineDropped.WithLabelValues(reason).Add(float64(n))
		}
		if s.Log != nil {
			s.Log.WithFields(logrus.Fields{"rows": n, "reason": reason, "retention": s.Retention.String(), "max_rows": s.MaxRows}).
				Warn("removed quarantined requests; replay or inspect the quarantine sooner, or raise quarantine.retention / quarantine.max_rows")
		}
	}
	return err
}
