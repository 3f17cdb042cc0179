package ledger

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector"
)

// countingWriter is a HistoryWriter that keeps what it was given, one slice per write.
type countingWriter struct {
	mu     sync.Mutex
	writes [][]HistoryVersion
	got    chan struct{}
}

func (w *countingWriter) Name() string                { return "counting" }
func (w *countingWriter) Start(context.Context) error { return nil }
func (w *countingWriter) WriteHistory(_ context.Context, vs []HistoryVersion) error {
	w.mu.Lock()
	w.writes = append(w.writes, vs)
	w.mu.Unlock()
	w.got <- struct{}{}
	return nil
}

// Versions committed one group at a time, each followed by a Notify, are delivered together
// after the linger rather than in one warehouse write per group.
func TestHistoryDeliveryGathersGroupsWhileLingering(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := &countingWriter{got: make(chan struct{}, 64)}
	d := NewHistoryDelivery(b.q, w, HistoryDeliveryOptions{PollInterval: time.Hour, Linger: time.Second})
	rec := NewRecorder(b.logPool, RecorderOptions{History: func(connector.TableKey) (HistoryPolicy, bool) { return HistoryPolicy{}, true },
		Notify: d.Notify})
	t.Cleanup(rec.Close)
	done := make(chan struct{})
	go func() { defer close(done); d.Run(ctx) }()
	// A first version, delivered: the delivery holds its lease and waits for work.
	_, err := rec.RecordResult(ctx, ch("first", t0, connector.OpUpsert, "x"))
	require.NoError(t, err)
	select {
	case <-w.got:
	case <-time.After(10 * time.Second):
		t.Fatal("the first version was not delivered")
	}
	w.mu.Lock()
	w.writes = nil
	w.mu.Unlock()
	// Ten groups 20 ms apart, well within the linger: a delivery without one writes each
	// group as it comes (the pause lets it), one with it writes them together.
	const groups = 10
	for i := range groups {
		_, err := rec.RecordResult(ctx, ch(fmt.Sprintf("r%d", i), t0, connector.OpUpsert, "x"))
		require.NoError(t, err)
		select {
		case <-w.got:
		case <-time.After(20 * time.Millisecond):
		}
	}
	require.Eventually(t, func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		n := 0
		for _, vs := range w.writes {
			n += len(vs)
		}
		return n == groups
	}, 10*time.Second, 5*time.Millisecond)
	cancel()
	<-done
	require.LessOrEqual(t, len(w.writes), 2, "the groups' versions go in one write (two if the linger ended before the last commit)")
}

// HistoryBacklog counts the versions recorded and not delivered, from the first one before
// the delivery ever ran, and only those after its cursor once it has.
func TestHistoryBacklogCountsUndeliveredVersions(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	admin := NewAdmin(b.pool)
	w := &countingWriter{got: make(chan struct{}, 64)}
	rec := NewRecorder(b.logPool, RecorderOptions{History: func(connector.TableKey) (HistoryPolicy, bool) { return HistoryPolicy{}, true }})
	t.Cleanup(rec.Close)
	for _, c := range []connector.Change{
		ch("a", t0, connector.OpUpsert, "x"),
		ch("a", t0.Add(time.Second), connector.OpUpsert, "y"),
		ch("a", t0.Add(time.Second), connector.OpUpsert, "y"), // a duplicate: no version
		ch("b", t0, connector.OpUpsert, "x"),
	} {
		_, err := rec.RecordResult(ctx, c)
		require.NoError(t, err)
	}
	n, lag, err := admin.HistoryBacklog(ctx, w.Name())
	require.NoError(t, err)
	require.Equal(t, int64(3), n, "no cursor yet: every version is pending")
	require.GreaterOrEqual(t, lag, time.Duration(0))

	d := NewHistoryDelivery(b.q, w, HistoryDeliveryOptions{PollInterval: 10 * time.Millisecond})
	done := make(chan struct{})
	go func() { defer close(done); d.Run(ctx) }()
	require.Eventually(t, func() bool {
		n, _, err := admin.HistoryBacklog(ctx, w.Name())
		return err == nil && n == 0
	}, 10*time.Second, 10*time.Millisecond)
	cancel()
	<-done
	_, lag, err = admin.HistoryBacklog(context.Background(), w.Name())
	require.NoError(t, err)
	require.Zero(t, lag)

	_, err = rec.RecordResult(context.Background(), ch("c", t0, connector.OpUpsert, "x"))
	require.NoError(t, err)
	n, _, err = admin.HistoryBacklog(context.Background(), w.Name())
	require.NoError(t, err)
	require.Equal(t, int64(1), n, "only the version after the delivery's cursor")
	n, _, err = admin.HistoryBacklog(context.Background(), "another")
	require.NoError(t, err)
	require.Equal(t, int64(4), n, "a history sink that never ran has every version pending")
}
