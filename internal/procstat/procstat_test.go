package procstat

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestReadAdvances(t *testing.T) {
	if _, err := os.Stat("/proc/stat"); err != nil {
		t.Skip("no /proc/stat on this system")
	}
	a, ok := Read()
	require.True(t, ok)
	require.Positive(t, a.Busy)
	require.GreaterOrEqual(t, a.Steal, int64(0))
	// Burn CPU until the busy counter moves (a tick is 10 ms).
	deadline := time.Now().Add(5 * time.Second)
	b := a
	for b.Busy == a.Busy && time.Now().Before(deadline) {
		for i := 0; i < 1_000_000; i++ {
			_ = i * i
		}
		b, _ = Read()
	}
	require.Greater(t, b.Busy, a.Busy)
	require.GreaterOrEqual(t, b.Steal, a.Steal)
}
