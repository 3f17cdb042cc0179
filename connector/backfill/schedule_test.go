package backfill_test

import (
	"bytes"
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/connector/backfill"
	"github.com/appwrite-sync/appwrite-sync/internal/appwritetest"
)

func jobsOf(t *testing.T, b *bundle) []*backfill.Job {
	v, err := b.m.List(context.Background(), 1000)
	require.NoError(t, err)
	return v.([]*backfill.Job)
}

func TestScheduleQueuesFullThenIncrementalPerTable(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.api.Seed(posts, 100, 100)
	b.api.Seed(connector.TableKey{Database: "main", Table: "ghost"}, 5, 100)
	s := backfill.NewScheduler(b.m, backfill.ScheduleOptions{IncrementalEvery: 300 * time.Millisecond, FullEvery: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	require.Eventually(t, func() bool {
		inc := 0
		for _, j := range jobsOf(t, b) {
			if j.Mode == backfill.ModeIncremental && j.State == backfill.StateSucceeded {
				inc++
			}
		}
		return inc >= 4
	}, 20*time.Second, 20*time.Millisecond)
	cancel()
	<-done

	full := map[string]int{}
	perTable := map[string][]time.Time{}
	for _, j := range jobsOf(t, b) {
		require.Equal(t, backfill.TriggerSchedule, j.Trigger)
		require.Equal(t, backfill.StateSucceeded, j.State, j.Error)
		if j.Mode == backfill.ModeFull {
			full[j.Table]++
		}
		perTable[j.Table] = append(perTable[j.Table], j.CreatedAt)
	}
	require.Equal(t, map[string]int{"main/posts": 1, "main/ghost": 1}, full, "one full job per table, first; */any names no table")
	for table, at := range perTable {
		for i := 1; i < len(at); i++ {
			require.GreaterOrEqual(t, at[i-1].Sub(at[i]), 290*time.Millisecond, "%s: jobs closer than the interval", table)
		}
	}
}

func TestScheduleOffByDefault(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{noRun: true})
	s := backfill.NewScheduler(b.m, backfill.ScheduleOptions{})
	require.False(t, s.Enabled())
	done := make(chan struct{})
	go func() { s.Run(context.Background()); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("Run of an empty schedule must return at once")
	}
	require.Empty(t, jobsOf(t, b))
}

func TestProbeReportsHealthAndReconcilesWhenReenabled(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{api: appwritetest.Options{Version: "1.9.0"}})
	b.api.Seed(posts, 50, 100)
	b.api.SetWebhook("wh1", true, 0)
	var logs bytes.Buffer
	l := logrus.New()
	l.SetOutput(&logs)
	l.SetFormatter(&logrus.JSONFormatter{})
	var reenabled atomic.Int32
	p := backfill.NewProbe(backfill.ProbeOptions{Client: b.client, IDs: []string{"wh1", "wh-missing"}, Metrics: b.metrics, Log: logrus.NewEntry(l),
		Reenabled: func(ctx context.Context, id string, _ time.Time) {
			reenabled.Add(1)
			_, err := b.m.ReconcileAll(ctx, backfill.ModeIncremental, backfill.TriggerProbe)
			require.NoError(t, err)
		}})
	ctx := context.Background()
	status := func() map[string]any {
		raw, err := json.Marshal(p.Status())
		require.NoError(t, err)
		var out map[string]any
		require.NoError(t, json.Unmarshal(raw, &out))
		return out["appwrite_webhooks"].(map[string]any)
	}

	require.True(t, p.Check(ctx))
	st := status()
	require.Equal(t, true, st["supported"])
	wh := st["webhooks"].(map[string]any)
	require.Equal(t, true, wh["wh1"].(map[string]any)["enabled"])
	require.Contains(t, wh["wh-missing"].(map[string]any)["error"], "no webhook \"wh-missing\"")
	require.EqualValues(t, 1, counter(b.metrics.WebhookEnabled.WithLabelValues("wh1")))

	b.api.SetWebhook("wh1", true, 3) // failing deliveries
	require.True(t, p.Check(ctx))
	require.Contains(t, logs.String(), "deliveries of the webhook are failing")
	require.EqualValues(t, 3, counter(b.metrics.WebhookAttempts.WithLabelValues("wh1")))

	b.api.SetWebhook("wh1", false, 10) // Appwrite gave up on it
	require.True(t, p.Check(ctx))
	require.Equal(t, false, status()["webhooks"].(map[string]any)["wh1"].(map[string]any)["enabled"])
	require.Contains(t, logs.String(), "Appwrite disabled the webhook")
	require.EqualValues(t, 0, counter(b.metrics.WebhookEnabled.WithLabelValues("wh1")))
	require.Zero(t, reenabled.Load())

	b.api.SetWebhook("wh1", true, 0) // someone re-enabled it
	require.True(t, p.Check(ctx))
	require.EqualValues(t, 1, reenabled.Load())
	jobs := jobsOf(t, b)
	require.Len(t, jobs, 2, "an incremental reconcile of every concrete table")
	for _, j := range jobs {
		require.Equal(t, backfill.ModeIncremental, j.Mode)
		require.Equal(t, backfill.TriggerProbe, j.Trigger)
	}
	require.True(t, p.Check(ctx))
	require.EqualValues(t, 1, reenabled.Load(), "only the transition reconciles")
}

func TestProbeStopsOnServersBefore19(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{noRun: true}) // 1.8.1
	var logs bytes.Buffer
	l := logrus.New()
	l.SetOutput(&logs)
	p := backfill.NewProbe(backfill.ProbeOptions{Client: b.client, IDs: []string{"wh1"}, Every: 10 * time.Millisecond, Log: logrus.NewEntry(l)})
	done := make(chan struct{})
	go func() { p.Run(context.Background()); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the probe must stop on a server without GET /webhooks/{id}")
	}
	require.Equal(t, 1, bytes.Count(logs.Bytes(), []byte("webhook probe stopped")), "logged once")
	require.Equal(t, false, p.Status()["appwrite_webhooks"].(map[string]any)["supported"])
}

// With Reenable, a webhook found disabled is enabled again through the API and Reenabled gets
// the moment it was disabled; without it, status says what to do.
func TestProbeReenablesDisabledWebhook(t *testing.T) {
	t.Parallel()
	scopes := append(append([]string(nil), appwritetest.DefaultScopes...), "webhooks.write")
	b := setup(t, setupOpts{api: appwritetest.Options{Version: "1.9.0", Scopes: scopes}, noRun: true})
	b.api.SetWebhook("wh1", true, 0)
	var got []time.Time
	opts := backfill.ProbeOptions{Client: b.client, IDs: []string{"wh1"}, Metrics: b.metrics,
		Reenabled: func(_ context.Context, _ string, since time.Time) { got = append(got, since) }}
	manual := backfill.NewProbe(opts)
	opts.Reenable = true
	auto := backfill.NewProbe(opts)
	ctx := context.Background()
	require.True(t, manual.Check(ctx))
	require.True(t, auto.Check(ctx))

	disabledAt := b.api.Now()
	b.api.SetWebhook("wh1", false, 10)
	require.True(t, manual.Check(ctx))
	h := manual.Status()["appwrite_webhooks"].(map[string]any)["webhooks"].(map[string]backfill.WebhookHealth)["wh1"]
	require.False(t, *h.Enabled)
	require.Contains(t, h.Action, "reenable_webhooks")
	require.NotNil(t, h.DisabledSince)
	wh, _ := b.api.Webhook("wh1")
	require.False(t, wh.Enabled, "the probe changes nothing without Reenable")
	require.Empty(t, got)

	require.True(t, auto.Check(ctx))
	wh, _ = b.api.Webhook("wh1")
	require.True(t, wh.Enabled, "enabled again")
	require.Zero(t, wh.Attempts)
	require.Len(t, got, 1)
	require.False(t, got[0].After(disabledAt), "reconciled from when Appwrite disabled it")
	h = auto.Status()["appwrite_webhooks"].(map[string]any)["webhooks"].(map[string]backfill.WebhookHealth)["wh1"]
	require.True(t, *h.Enabled)
	require.Equal(t, 1, h.Reenabled)
	require.Nil(t, h.DisabledSince)
	require.EqualValues(t, 1, counter(b.metrics.WebhookReenabled.WithLabelValues("wh1")))
	require.True(t, auto.Check(ctx))
	require.Len(t, got, 1, "only once")
}
