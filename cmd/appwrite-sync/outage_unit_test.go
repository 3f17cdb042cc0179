package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/connector/audit"
	"github.com/appwrite-sync/appwrite-sync/connector/ledger"
	"github.com/appwrite-sync/appwrite-sync/connector/metrics"
	"github.com/appwrite-sync/appwrite-sync/connector/webhook"
)

// downApp is an app whose state store is unreachable (nothing listens on its port).
func downApp(t *testing.T, spoolDir string, maxBytes int64) *app {
	t.Helper()
	cfg := testConfig(t, "postgres://u@127.0.0.1:1/db?connect_timeout=1", "postgres://u@127.0.0.1:1/db", "")
	cfg.State.SpoolDir, cfg.State.SpoolMaxBytes = spoolDir, maxBytes
	l := logrus.New()
	l.SetOutput(io.Discard)
	a := &app{cfg: cfg, log: logrus.NewEntry(l), metrics: metrics.New()}
	pool, err := ledger.OpenLogPool(context.Background(), cfg.State.DatabaseURL, 2)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	a.state = pool
	a.recorder = ledger.NewRecorder(pool, ledger.RecorderOptions{Log: a.log})
	t.Cleanup(a.recorder.Close)
	a.outage = newOutage(a)
	t.Cleanup(func() { a.outage.close(time.Second) })
	return a
}

func bigChange(i int, size int) connector.Change {
	row := fmt.Sprintf(`{"$id":"r%d","pad":%q}`, i, strings.Repeat("x", size))
	return connector.Change{Key: connector.TableKey{Database: "main", Table: "posts"}, RowID: fmt.Sprintf("r%d", i),
		Op: connector.OpUpsert, UpdatedAt: time.Unix(1_700_000_000, 0), Action: "update", Row: []byte(row)}
}

// A full spool answers 503 (an ErrUnavailable, not a permanent error) and puts the table on the
// repair list; readiness follows: ready while the spool takes changes, not once it is full.
func TestSpoolFullAnswers503AndRemembersTheTable(t *testing.T) {
	t.Parallel()
	a := downApp(t, t.TempDir(), 1<<20)
	ctx := context.Background()
	unreachable := &ledger.NotReadyError{Reason: ledger.ReasonUnreachable, Err: errors.New("down")}
	require.True(t, a.outage.readyDespite(unreachable))
	require.False(t, a.outage.readyDespite(&ledger.NotReadyError{Reason: ledger.ReasonNotMigrated, Err: errors.New("x")}),
		"only an unreachable store is covered by the spool")
	for i := range 4 {
		res, err := a.outage.record(ctx, bigChange(i, 250<<10))
		require.NoError(t, err)
		require.Equal(t, webhook.RecordedSpooled, res, "answered 200 with result spooled")
	}
	_, err := a.outage.record(ctx, bigChange(4, 250<<10))
	require.ErrorIs(t, err, ledger.ErrUnavailable)
	require.False(t, connector.IsPermanent(err))
	require.Equal(t, 1.0, collectedValue(a.metrics.Refused.WithLabelValues("spool_full")))
	require.Equal(t, 4.0, collectedValue(a.metrics.SpoolAppended))
	require.Contains(t, a.outage.status()["repair"].(map[string]any)["refused_since"], "main/posts")
	require.False(t, a.outage.readyDespite(unreachable), "a full spool is not ready")
}

// A spool directory that cannot be used leaves the service as without a spool: 503, and the
// table on the repair list; status says why.
func TestUnwritableSpoolAnswers503(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	a := downApp(t, filepath.Join(file, "spool"), 1<<20)
	_, err := a.outage.record(context.Background(), bigChange(1, 10))
	require.ErrorIs(t, err, ledger.ErrUnavailable)
	require.Equal(t, 1.0, collectedValue(a.metrics.Refused.WithLabelValues("spool_unwritable")))
	st := a.outage.status()
	require.Contains(t, st["spool"].(map[string]any)["error"], "spool")
	require.Equal(t, false, st["spool"].(map[string]any)["enabled"])
	require.False(t, a.outage.readyDespite(&ledger.NotReadyError{Reason: ledger.ReasonUnreachable, Err: errors.New("down")}))
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
	a := downApp(t, t.TempDir(), 1<<20)
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
	require.Empty(t, a.outage.status()["repair"].(map[string]any)["refused_since"])
	h.Set(webhook.HeaderEvents, "databases.main.tables.posts.rows.r1.update,databases.*.tables.*.rows.*")
	body := rowBody("r1", time.Now(), "t", 1, "a")
	require.ErrorIs(t, aud.Audit(context.Background(), h, body, time.Now()), audit.ErrUnavailable)
	require.Equal(t, 1.0, collectedValue(a.metrics.Refused.WithLabelValues("audit_unavailable")))
	require.Contains(t, a.outage.status()["repair"].(map[string]any)["refused_since"], "main/posts")
}
