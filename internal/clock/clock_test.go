package clock

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestFakeFiresDueWaitsOnAdvance(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f := NewFake(start)
	a, b := f.After(time.Second), f.After(3*time.Second)
	require.Equal(t, []time.Duration{time.Second, 3 * time.Second}, f.Pending())
	f.Advance(999 * time.Millisecond)
	select {
	case <-a:
		t.Fatal("fired early")
	default:
	}
	f.Advance(time.Millisecond)
	require.Equal(t, start.Add(time.Second), <-a)
	require.Equal(t, []time.Duration{2 * time.Second}, f.Pending())
	f.Advance(time.Hour)
	require.Equal(t, start.Add(time.Hour+time.Second), <-b)
	require.Empty(t, f.Pending())
	require.Equal(t, start.Add(time.Hour+time.Second), f.Now())
	select {
	case <-f.After(0):
	default:
		t.Fatal("a wait of 0 is due at once")
	}
}

func TestAwaitWaitSeesAWaitStartedLater(t *testing.T) {
	t.Parallel()
	f := NewFake(time.Now())
	go func() { <-f.After(5 * time.Second) }()
	d, ok := f.AwaitWait(10*time.Second, func(d time.Duration) bool { return d == 5*time.Second })
	require.True(t, ok)
	require.Equal(t, 5*time.Second, d)
	_, ok = f.AwaitWait(10*time.Millisecond, func(d time.Duration) bool { return d == time.Minute })
	require.False(t, ok)
}
