package main

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector/audit"
	"github.com/appwrite-sync/appwrite-sync/connector/ledger"
	"github.com/appwrite-sync/appwrite-sync/connector/metrics"
	"github.com/appwrite-sync/appwrite-sync/connector/webhook"
)

// downApp is an app whose state store is unreachable (nothing listens on its port), with a spool.
func downApp(t *testing.T) *app {
	t.Helper()
	cfg := testConfig(t, "postgres://u@127.0.0.1:1/db?connect_timeout=1", "postgres://u@127.0.0.1:1/db", "")
	cfg.State.SpoolDir = t.TempDir()
	l := logrus.New()
	l.SetOutput(io.Discard)
	a := &app{cfg: cfg, log: logrus.NewEntry(l), metrics: metrics.New()}
	pool, err := ledger.OpenLogPool(context.Background(), cfg.State.DatabaseURL, 2)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	a.state = pool
	a.admin = ledger.NewAdmin(pool)
	a.recorder = ledger.NewRecorder(pool, ledger.RecorderOptions{Log: a.log})
	t.Cleanup(a.recorder.Close)
	a.outage = a.newOutage()
	t.Cleanup(func() { a.outage.Close(time.Second) })
	return a
}

// collectedValue is the value of counter or gauge c.
func collectedValue(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return metricValue(&m)
}

// An audited row change the audit log cannot record is answered 503 and not recorded: its
// table goes on the repair list, as a refused change's does; an audited user event does not
// (there is nothing to reconcile).
func TestAuditUnavailableRepairsTheTable(t *testing.T) {
	t.Parallel()
	a := downApp(t)
	a.logPool, a.wh = a.state, a.state
	a.cfg.Audit.Events = []string{"databases.*.tables.*.rows.*", "users.*"}
	var err error
	a.audit, err = newAuditLog(a)
	require.NoError(t, err)
	t.Cleanup(a.audit.close)
	aud := a.audit.auditor()
	h := http.Header{}
	h.Set(webhook.HeaderEvents, "users.u1.create,users.*")
	require.ErrorIs(t, aud.Audit(context.Background(), h, []byte(`{"$id":"u1"}`), time.Now()), audit.ErrUnavailable)
	require.Empty(t, a.outage.Status()["repair"].(map[string]any)["refused_since"])
	h.Set(webhook.HeaderEvents, "databases.main.tables.posts.rows.r1.update,databases.*.tables.*.rows.*")
	body := rowBody("r1", time.Now(), "t", 1, "a")
	require.ErrorIs(t, aud.Audit(context.Background(), h, body, time.Now()), audit.ErrUnavailable)
	require.Equal(t, 1.0, collectedValue(a.metrics.Refused.WithLabelValues("audit_unavailable")))
	require.Contains(t, a.outage.Status()["repair"].(map[string]any)["refused_since"], "main/posts")
}
