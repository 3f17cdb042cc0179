package pgtext

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func TestClean(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, in string
		max      int
		want     string
	}{
		{"short ascii unchanged", "boom", 10, "boom"},
		{"no limit", strings.Repeat("é", 50), 0, strings.Repeat("é", 50)},
		{"nul removed", "a\x00b\x00", 10, "ab"},
		{"invalid utf-8 replaced", "a\xffb\xc3", 10, "a\uFFFDb\uFFFD"},
		{"cut on ascii", "abcdefghij", 6, "abc…"},
		// "é" is 2 bytes: 10 bytes of them cut to 7-3 = 4 bytes, two whole characters.
		{"cut never splits a character", "ééééé", 7, "éé…"},
		// 4-byte characters: a limit of 8 leaves 5 bytes for text, one whole character.
		{"cut before a 4-byte character", "😀😀😀", 8, "😀…"},
		{"exact length unchanged", "éé", 4, "éé"},
		{"limit below the mark cuts without it", "ééé", 2, "é"},
		{"limit below one character", "😀😀", 2, ""},
		{"nul removed before measuring", "ab\x00\x00\x00", 2, "ab"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got := Clean(c.in, c.max)
			require.Equal(t, c.want, got)
			require.True(t, utf8.ValidString(got))
		})
	}
}

// Whatever the input, the result is storable (valid UTF-8 without NUL), within the limit, and
// a prefix of the cleaned input (plus the mark when cut).
func FuzzClean(f *testing.F) {
	for _, s := range []string{"", "boom", "a\x00b", "\xff\xfe", "ééééé", "😀😀😀", strings.Repeat("ü", 1500), "x\xc3"} {
		f.Add(s, 7)
		f.Add(s, 2000)
	}
	f.Fuzz(func(t *testing.T, s string, max int) {
		max %= 4096
		got := Clean(s, max)
		if !utf8.ValidString(got) || strings.IndexByte(got, 0) >= 0 {
			t.Fatalf("Clean(%q, %d) = %q: not storable", s, max, got)
		}
		if max > 0 && len(got) > max {
			t.Fatalf("Clean(%q, %d) = %q: %d bytes", s, max, got, len(got))
		}
		whole := Clean(s, 0)
		if !strings.HasPrefix(whole, strings.TrimSuffix(got, Ellipsis)) {
			t.Fatalf("Clean(%q, %d) = %q is not a prefix of %q", s, max, got, whole)
		}
	})
}
