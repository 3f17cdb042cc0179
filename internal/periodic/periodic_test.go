package periodic

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestNowCallsAtOnceAndStopsWhenFnSaysSo(t *testing.T) {
	t.Parallel()
	calls := 0
	Now(context.Background(), time.Millisecond, func() bool {
		calls++
		return calls < 3
	})
	require.Equal(t, 3, calls)
}

func TestAfterWaitsOneInterval(t *testing.T) {
	t.Parallel()
	start := time.Now()
	var first time.Duration
	After(context.Background(), 20*time.Millisecond, func() bool {
		first = time.Since(start)
		return false
	})
	require.GreaterOrEqual(t, first, 20*time.Millisecond)
}

func TestEndedContextStopsTheLoop(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	Now(ctx, time.Millisecond, func() bool {
		calls++
		cancel()
		return true
	})
	require.Equal(t, 1, calls)
	After(ctx, time.Millisecond, func() bool { t.Fatal("called after ctx ended"); return true })
}
