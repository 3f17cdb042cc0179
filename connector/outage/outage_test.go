package outage

import (
	"context"
	"errors"
	"fmt"
	"io"
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
	"github.com/appwrite-sync/appwrite-sync/connector/ledger"
	"github.com/appwrite-sync/appwrite-sync/connector/metrics"
	"github.com/appwrite-sync/appwrite-sync/connector/webhook"
)

// downGuard is a Guard whose state store is unreachable (nothing listens on its port).
func downGuard(t *testing.T, spoolDir string, maxBytes int64) (*Guard, *metrics.Metrics) {
	t.Helper()
	l := logrus.New()
	l.SetOutput(io.Discard)
	log := logrus.NewEntry(l)
	pool, err := ledger.OpenLogPool(context.Background(), "postgres://u@127.0.0.1:1/db?connect_timeout=1", 2)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	rec := ledger.NewRecorder(pool, ledger.RecorderOptions{Log: log})
	t.Cleanup(rec.Close)
	m := metrics.New()
	g := New(Options{Dir: spoolDir, MaxBytes: maxBytes, MaxBodyBytes: webhook.MaxBodyBytesDefault,
		State: pool, Recorder: rec, Admin: ledger.NewAdmin(pool),
		Tables: []connector.TableKey{{Database: "main", Table: "posts"}, {Database: "*", Table: "logs"}}, Metrics: m, Log: log})
	t.Cleanup(func() { g.Close(time.Second) })
	return g, m
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
	g, m := downGuard(t, t.TempDir(), 1<<20)
	ctx := context.Background()
	unreachable := &ledger.NotReadyError{Reason: ledger.ReasonUnreachable, Err: errors.New("down")}
	require.True(t, g.readyDespite(unreachable))
	require.False(t, g.readyDespite(&ledger.NotReadyError{Reason: ledger.ReasonNotMigrated, Err: errors.New("x")}),
		"only an unreachable store is covered by the spool")
	for i := range 4 {
		res, err := g.Record(ctx, bigChange(i, 250<<10))
		require.NoError(t, err)
		require.Equal(t, webhook.RecordedSpooled, res, "answered 200 with result spooled")
	}
	_, err := g.Record(ctx, bigChange(4, 250<<10))
	require.ErrorIs(t, err, ledger.ErrUnavailable)
	require.False(t, connector.IsPermanent(err))
	require.Equal(t, 1.0, collectedValue(m.Refused.WithLabelValues("spool_full")))
	require.Equal(t, 4.0, collectedValue(m.SpoolAppended))
	require.Contains(t, g.Status()["repair"].(map[string]any)["refused_since"], "main/posts")
	require.False(t, g.readyDespite(unreachable), "a full spool is not ready")
}

// A spool directory that cannot be used leaves the service as without a spool: 503, and the
// table on the repair list; status says why.
func TestUnwritableSpoolAnswers503(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	g, m := downGuard(t, filepath.Join(file, "spool"), 1<<20)
	_, err := g.Record(context.Background(), bigChange(1, 10))
	require.ErrorIs(t, err, ledger.ErrUnavailable)
	require.Equal(t, 1.0, collectedValue(m.Refused.WithLabelValues("spool_unwritable")))
	st := g.Status()
	require.Contains(t, st["spool"].(map[string]any)["error"], "spool")
	require.Equal(t, false, st["spool"].(map[string]any)["enabled"])
	require.False(t, g.readyDespite(&ledger.NotReadyError{Reason: ledger.ReasonUnreachable, Err: errors.New("down")}))
}

// refusedSince is the repair list as GET /admin/status shows it.
func refusedSince(g *Guard) map[string]time.Time {
	return g.Status()["repair"].(map[string]any)["refused_since"].(map[string]time.Time)
}

// A run marker left in the spool directory means the last run died with requests unanswered:
// every mapped table (not a wildcard database, which no reconcile can read) is reconciled from
// a crash window before its last heartbeat, and the new run writes its own marker.
func TestCrashedRunRepairsEveryTable(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	marker := filepath.Join(dir, runningFile)
	require.NoError(t, os.WriteFile(marker, nil, 0o600))
	beat := time.Now().Add(-time.Hour).Truncate(time.Second)
	require.NoError(t, os.Chtimes(marker, beat, beat))
	g, _ := downGuard(t, dir, 1<<20)
	require.Equal(t, map[string]time.Time{"main/posts": beat.Add(-crashWindow())}, refusedSince(g))
	fi, err := os.Stat(marker)
	require.NoError(t, err)
	require.True(t, fi.ModTime().After(beat), "this run's marker replaces the dead run's")
}

// A webhook enabled again puts every mapped table on the list from when it was disabled; a
// table already there from earlier keeps the earlier time.
func TestWebhookReenabledRepairsEveryTable(t *testing.T) {
	t.Parallel()
	g, m := downGuard(t, t.TempDir(), 1<<20)
	since := time.Now().Add(-time.Minute)
	g.WebhookReenabled(context.Background(), "hook", since)
	require.Equal(t, map[string]time.Time{"main/posts": since}, refusedSince(g))
	g.WebhookReenabled(context.Background(), "hook", since.Add(time.Second))
	require.Equal(t, since, refusedSince(g)["main/posts"])
	require.Equal(t, 1.0, collectedValue(m.RefusedTables))
}

// collectedValue is the value of counter or gauge c.
func collectedValue(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return -1
}
