package metrics

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Every metric the dashboard and the README name must exist, so neither can drift silently.
func TestDocumentedMetricsExist(t *testing.T) {
	m := New()
	m.WebhookRequests.WithLabelValues("w", "recorded").Inc() // vectors appear once they have a child
	m.RateLimited.WithLabelValues("w").Inc()
	m.IntakeRefused.WithLabelValues("w").Inc()
	m.IngestLatency.WithLabelValues("recorded").Observe(0.001)
	m.Changes.WithLabelValues("t", "recorded").Inc()
	m.Ties.WithLabelValues("t").Inc()
	m.BelowHorizon.WithLabelValues("t").Inc()
	m.Pending.WithLabelValues("s").Set(1)
	m.Lag.WithLabelValues("s").Set(1)
	m.Applied.WithLabelValues("s").Inc()
	m.Failed.WithLabelValues("s", "retry").Inc()
	m.DeadLetter.WithLabelValues("s").Set(1)
	m.BatchSize.WithLabelValues("s").Observe(1)
	m.ClaimLatency.WithLabelValues("s").Observe(1)
	m.ApplyLatency.WithLabelValues("s").Observe(1)
	m.SinkUp.WithLabelValues("s").Set(1)
	m.Reprojected.WithLabelValues("s").Inc()
	m.BackfillRows.WithLabelValues("t", "read").Inc()
	m.BackfillJobs.WithLabelValues("full", "succeeded").Inc()
	m.WebhookEnabled.WithLabelValues("w").Set(1)
	m.WebhookAttempts.WithLabelValues("w").Set(0)
	m.Refused.WithLabelValues("spool_off").Inc()
	m.WebhookReenabled.WithLabelValues("w").Inc()
	m.HistoryKept.WithLabelValues("t").Inc()
	m.HistoryDelivered.WithLabelValues("t").Inc()
	m.HistoryRemoved.WithLabelValues("t", "state").Inc()
	m.AuditEntries.WithLabelValues("recorded").Inc()
	m.LogPending.WithLabelValues("audit").Set(0)
	m.LogLag.WithLabelValues("audit").Set(0)
	families, err := m.Registry.Gather()
	require.NoError(t, err)
	have := map[string]bool{}
	for _, f := range families {
		have[f.GetName()] = true
	}
	re := regexp.MustCompile(`appwrite_sync_[a-z_]+`)
	for _, file := range []string{"../../deploy/grafana/appwrite-sync.json", "../../README.md", "../../docs/api.md", "../../docs/operations.md"} {
		b, err := os.ReadFile(file)
		require.NoError(t, err)
		for _, name := range re.FindAllString(string(b), -1) {
			base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
			if base == "appwrite_sync_schema_migrations" || strings.HasSuffix(base, "_") {
				continue
			}
			require.True(t, have[base], "%s names %s, which is not a metric", file, name)
		}
	}
}

// Every metric is listed in docs/api.md, so a metric added here is documented with it.
func TestEveryMetricIsDocumented(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../docs/api.md")
	require.NoError(t, err)
	src, err := os.ReadFile("metrics.go")
	require.NoError(t, err)
	names := regexp.MustCompile(`"(appwrite_sync_[a-z_]+)"`).FindAllStringSubmatch(string(src), -1)
	require.NotEmpty(t, names)
	for _, n := range names {
		require.Contains(t, string(b), "`"+n[1], "docs/api.md does not list %s", n[1])
	}
}

// Every collector field is declared with a tag, so New creates it: a field added without one
// would stay nil and panic at its first use.
func TestEveryFieldIsCreated(t *testing.T) {
	t.Parallel()
	v := reflect.ValueOf(New()).Elem()
	for i := range v.NumField() {
		require.False(t, v.Field(i).IsNil(), "Metrics.%s has no metric tag", v.Type().Field(i).Name)
	}
}
