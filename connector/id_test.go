package connector

import (
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestValidID(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"a", "A9", "0", "a.b", "a_b-c.d", "row.2026.001", strings.Repeat("x", 255)} {
		require.True(t, ValidID(s), s)
	}
	for _, s := range []string{"", ".a", "_a", "-a", "a b", "a/b", "a*", "é", strings.Repeat("x", 256)} {
		require.False(t, ValidID(s), s)
	}
}

// ValidID is IDPattern anchored, up to MaxIDLen: the webhook decoder and the mapping (which
// use one) and the event shapes (which use the other) agree on what an id is.
func TestValidIDIsIDPattern(t *testing.T) {
	t.Parallel()
	re := regexp.MustCompile(`^` + IDPattern + `$`)
	for _, s := range []string{"", "a", "r1", "A.b_c-d", "0", ".a", "_a", "-a", "a b", "a/b", "é", "a.", "a$", "$id",
		strings.Repeat("x", MaxIDLen), strings.Repeat("x", MaxIDLen+1)} {
		require.Equal(t, re.MatchString(s) && len(s) <= MaxIDLen, ValidID(s), "%q", s)
	}
}

func FuzzValidID(f *testing.F) {
	for _, s := range []string{"r1", "a.b", ".a", "a b", ""} {
		f.Add(s)
	}
	re := regexp.MustCompile(`^` + IDPattern + `$`)
	f.Fuzz(func(t *testing.T, s string) {
		if want := re.MatchString(s) && len(s) <= MaxIDLen; ValidID(s) != want {
			t.Fatalf("ValidID(%q) = %v, the pattern says %v", s, !want, want)
		}
	})
}
