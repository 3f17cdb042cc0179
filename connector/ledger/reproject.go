package ledger

import (
	"context"

	"github.com/sirupsen/logrus"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/connector/metrics"
	"github.com/appwrite-sync/appwrite-sync/connector/sink"
)

// ReprojectChanged queues, for each sink, the rows of every table whose mapping fingerprint
// (sink.Sink.Fingerprint) changed since the sink last ran (Reproject). The tables checked
// are those in the ledger and the concrete mapped ones (mapped; a sink seen for the first time
// is registered for them, so delivery does not re-project them later). m and log may be nil.
func (a *Admin) ReprojectChanged(ctx context.Context, sinks []sink.Sink, mapped []connector.TableKey, m *metrics.Metrics, log *logrus.Entry) error {
	tables, err := a.LedgerTables(ctx)
	if err != nil {
		return err
	}
	for _, s := range sinks {
		fps := map[string]string{}
		for _, tk := range tables {
			k, err := connector.ParseTableKey(tk)
			if err != nil || !s.Handles(k) {
				continue
			}
			fps[tk] = s.Fingerprint(k)
		}
		for _, k := range mapped {
			if k.Database != "*" && s.Handles(k) {
				fps[k.String()] = s.Fingerprint(k)
			}
		}
		n, err := a.Reproject(ctx, s.Name(), fps)
		if err != nil {
			return err
		}
		for t, c := range n {
			if c <= 0 {
				continue
			}
			if m != nil {
				m.Reprojected.WithLabelValues(s.Name()).Add(float64(c))
			}
			if log != nil {
				log.WithFields(logrus.Fields{"sink": s.Name(), "table": t, "rows": c}).Info("mapping changed: re-projecting rows from the ledger")
			}
		}
	}
	return nil
}
