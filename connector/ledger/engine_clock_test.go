package ledger

import (
	"context"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/internal/clock"
)

// clockEngine is testEngine on a fake clock: the engine's waits (polling, pauses, renewal)
// pass only when the test advances it.
func clockEngine(q *Queue, s *fakeSink, clk *clock.Fake) *Engine {
	log := logrus.New()
	log.SetLevel(logrus.ErrorLevel)
	return NewEngine(q, []SinkConfig{{Sink: s, BatchSize: 50, Workers: 1}},
		EngineOptions{Lease: 3 * time.Second, PollInterval: 10 * time.Millisecond, MaxBackoff: time.Minute, Clock: clk, Log: logrus.NewEntry(log)})
}

func runEngine(t *testing.T, e *Engine) {
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Run(ctx); close(done) }()
	t.Cleanup(func() { stop(); <-done })
}

// A sink that is down pauses its delivery for the backoff, on the engine's clock: nothing is
// sent again until the clock has moved the whole wait on, and then the row lands.
func TestEnginePauseWaitsItsBackoffOnTheClock(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f := newFakeSink(t)
	f.set(func(f *fakeSink) { f.down = true })
	clk := clock.NewFake(time.Now())
	e := clockEngine(b.q, f, clk)
	require.NoError(t, b.rec.Record(context.Background(), ch("r1", t0, connector.OpUpsert, "x")))
	runEngine(t, e)

	// The first backoff is 200 ms ± 50%; the poll waits are 10 ms and the slot wait a second.
	isPause := func(d time.Duration) bool { return d >= 100*time.Millisecond && d <= 300*time.Millisecond }
	var wait time.Duration
	require.Eventually(t, func() bool {
		e.Notify() // the row may become visible after the first read: read again at once
		var ok bool
		wait, ok = clk.AwaitWait(20*time.Millisecond, isPause)
		return ok
	}, 10*time.Second, time.Millisecond, "the delivery did not pause on the clock")
	require.Equal(t, "paused", e.Status()["s"].State)
	clk.Advance(wait - time.Millisecond)
	f.set(func(f *fakeSink) { f.down = false })
	f.mu.Lock()
	applies := f.applies
	f.mu.Unlock()
	require.Zero(t, applies, "nothing was applied while the sink was down")
	_, stillWaiting := clk.AwaitWait(time.Second, func(d time.Duration) bool { return d == time.Millisecond })
	require.True(t, stillWaiting, "the pause lasts its whole backoff")

	clk.Advance(time.Millisecond)
	require.Eventually(t, func() bool {
		held, _ := f.snapshot()
		return held["r1"] > 0
	}, 10*time.Second, 5*time.Millisecond, "the row lands once the backoff has passed")
}

// The delivery lease is renewed once a third of it has passed on the engine's clock, and not
// before.
func TestEngineRenewsItsLeaseOnTheClock(t *testing.T) {
	t.Parallel()
	b := setup(t)
	clk := clock.NewFake(time.Now())
	e := clockEngine(b.q, newFakeSink(t), clk)
	runEngine(t, e)
	isPoll := func(d time.Duration) bool { return d == 10*time.Millisecond }
	leaseUntil := func() time.Time {
		var at time.Time
		require.NoError(t, b.pool.QueryRow(context.Background(),
			`SELECT lease_until FROM appwrite_sync.sink_cursor WHERE sink = 's'`).Scan(&at))
		return at
	}
	_, ok := clk.AwaitWait(10*time.Second, isPoll) // leader, idle, polling
	require.True(t, ok)
	first := leaseUntil()

	clk.Advance(900 * time.Millisecond) // 2.1 s of 3 s left: not yet
	_, ok = clk.AwaitWait(10*time.Second, isPoll)
	require.True(t, ok)
	require.Equal(t, first, leaseUntil(), "renewed before a third of the lease had passed")

	clk.Advance(200 * time.Millisecond) // 1.9 s left
	_, ok = clk.AwaitWait(10*time.Second, isPoll)
	require.True(t, ok)
	require.True(t, leaseUntil().After(first), "not renewed once a third of the lease had passed")
}
