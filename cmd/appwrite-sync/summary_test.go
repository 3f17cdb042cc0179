package main

import (
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector/metrics"
	"github.com/appwrite-sync/appwrite-sync/internal/pgtest"
)

// Every test instance writes its summary often, so the tests that read logs see it too (the
// secrets test holds it to leaking nothing).
func init() { summaryEvery = 300 * time.Millisecond }

// TestSummaryLineCountsWhatHappened: one info line with the webhooks recorded and refused by
// reason, the changes by result and per sink the rows applied, pending, lag and dead letters
// since the last line; none while nothing happens.
func TestSummaryLineCountsWhatHappened(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	log, hook := test.NewNullLogger()
	s := newSummarizer(m.Registry, logrus.NewEntry(log))
	m.WebhookRequests.WithLabelValues("webhooks[0]", "recorded").Add(3)
	m.WebhookRequests.WithLabelValues("webhooks[0]", "unauthorized").Add(2)
	m.WebhookRequests.WithLabelValues("webhooks[0]", "too_large").Inc()
	m.Changes.WithLabelValues("main/posts", "recorded").Add(2)
	m.Changes.WithLabelValues("main/posts", "stale").Inc()
	m.Applied.WithLabelValues("postgres").Add(2)
	m.SetQueue("postgres", 1, 4, 0.5)
	m.SetQueue("meilisearch", 0, 0, 0)

	s.tick(time.Minute)
	require.Len(t, hook.AllEntries(), 1)
	e := hook.LastEntry()
	require.Equal(t, logrus.InfoLevel, e.Level)
	require.Equal(t, "last 1m0s: webhooks 3 recorded, 0 ignored, 3 refused (too_large 1, unauthorized 2); changes new 2, stale 1; "+
		"meilisearch: 0 applied, 0 pending, lag 0.0s, 0 dead letters; postgres: 2 applied, 1 pending, lag 0.5s, 4 dead letters", e.Message)
	require.Equal(t, map[string]int64{"unauthorized": 2, "too_large": 1}, e.Data["refused"])

	// Nothing new and nothing pending: no line.
	m.SetQueue("postgres", 0, 4, 0)
	s.tick(time.Minute)
	require.Len(t, hook.AllEntries(), 1)
	// Only deliveries: a line again.
	m.Applied.WithLabelValues("meilisearch").Add(7)
	s.tick(time.Minute)
	require.Len(t, hook.AllEntries(), 2)
	require.Contains(t, hook.LastEntry().Message, "webhooks 0 recorded, 0 ignored, 0 refused; meilisearch: 7 applied")
	// Events kept in the audit log only are accepted, not refused.
	m.WebhookRequests.WithLabelValues("webhooks[0]", "audited").Add(4)
	s.tick(time.Minute)
	require.Contains(t, hook.LastEntry().Message, "webhooks 0 recorded, 0 ignored, 0 refused, 4 in the audit log only;")
}

// TestServeLogsTheSummary: a running serve writes the summary at info once a webhook arrived.
func TestServeLogsTheSummary(t *testing.T) {
	t.Parallel()
	state := pgtest.NewDatabase(t)
	logs := &syncBuf{}
	in := startInstanceLog(t, testConfig(t, state, state, ""), logs)
	require.Equal(t, 200, post(t, in.base, "s1", event{"create", rowBody("s1", time.Now(), "x", 1, "a")}))
	require.Eventually(t, func() bool {
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, `"level":"info"`) && strings.Contains(l, "webhooks 1 recorded") && strings.Contains(l, "postgres: ") {
				return true
			}
		}
		return false
	}, 10*time.Second, 50*time.Millisecond, logs.String())
}
