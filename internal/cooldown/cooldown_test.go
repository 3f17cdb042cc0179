package cooldown

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// A refused key skips exactly its next n tries, others are unaffected, and a second refusal
// starts the count again.
func TestRefusedSkipsTheNextTries(t *testing.T) {
	t.Parallel()
	c := New[string](3)
	require.True(t, c.Try("a"))
	c.Refused("a")
	for i := range 3 {
		require.False(t, c.Try("a"), "try %d", i)
		require.True(t, c.Try("b"))
	}
	require.True(t, c.Try("a"))
	require.True(t, c.Try("a"))
	c.Refused("a")
	require.False(t, c.Try("a"))
	c.Refused("a")
	for range 3 {
		require.False(t, c.Try("a"))
	}
	require.True(t, c.Try("a"))
}
