package suggest

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestClosest(t *testing.T) {
	t.Parallel()
	opts := []string{"listen", "admin", "primary_key"}
	for s, want := range map[string]string{
		"lisen":      "listen",
		"LISTEN":     "listen", // case does not count
		"admn":       "admin",
		"primarykey": "primary_key",
		"zzzzzz":     "",
		"prim":       "", // 7 edits away, over max(2, 4/3)
		"":           "",
	} {
		require.Equal(t, want, Closest(s, opts), s)
	}
	require.Equal(t, "", Closest("x", nil))
	// The limit grows with the length: a third of it, 4 for 12 bytes.
	require.Equal(t, "replicas_max", Closest("replica_mxxx", []string{"replicas_max"}))
}

func TestLevenshtein(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"a", "", 1}, {"", "abc", 3}, {"kitten", "sitting", 3}, {"flaw", "lawn", 2}} {
		require.Equal(t, c.d, levenshtein(c.a, c.b), "%q %q", c.a, c.b)
		require.Equal(t, c.d, levenshtein(c.b, c.a), "%q %q", c.b, c.a)
	}
}
