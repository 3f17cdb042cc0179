package defaults

import (
	"io"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/require"
)

func TestPositiveFillsZeroAndNegative(t *testing.T) {
	t.Parallel()
	for _, v := range []time.Duration{0, -time.Second} {
		Positive(&v, time.Minute)
		require.Equal(t, time.Minute, v)
	}
	n := 3
	Positive(&n, 7)
	require.Equal(t, 3, n, "a set value stays")
}

func TestZeroKeepsNegative(t *testing.T) {
	t.Parallel()
	n, m, s := 0, -1, ""
	Zero(&n, 5)
	Zero(&m, 5)
	Zero(&s, "x")
	require.Equal(t, []any{5, -1, "x"}, []any{n, m, s})
}

func TestLogs(t *testing.T) {
	t.Parallel()
	var std, quiet *logrus.Entry
	Log(&std)
	Quiet(&quiet)
	require.Same(t, logrus.StandardLogger(), std.Logger)
	require.Equal(t, io.Discard, quiet.Logger.Out)
	kept := quiet
	Log(&kept)
	require.Same(t, quiet, kept, "a set logger stays")
}
