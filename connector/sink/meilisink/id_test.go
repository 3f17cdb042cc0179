package meilisink

import (
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var meiliIDRe = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func TestEncodeID(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"plain", "plain"},
		{"a-b_c", "a-b_c"},
		{"5f1a2b3c4d5e6f708192a3b4", "5f1a2b3c4d5e6f708192a3b4"},
		{"0123456789abcdef0123456789abcdef0123", "0123456789abcdef0123456789abcdef0123"}, // 36 characters
		{"a.b", "_a_2Eb"},
		{"row.1-x", "_row_2E1-x"},
		{"a_b.c", "_a_5Fb_2Ec"}, // an '_' inside an encoded id is escaped
		{"_x", "__5Fx"},         // the prefix itself is never passed through
		{"_", "__5F"},           //
		{"__5Fx", "__5F_5F5Fx"}, // an encoded form, taken as an id, is encoded again
		{"", "_"},               // the empty id still gets a valid document id
		{"main/posts/a.b", "_main_2Fposts_2Fa_2Eb"}, // a shared index's key
		{"é", "__C3_A9"},
		{"a b", "_a_20b"},
		{strings.Repeat("a", 511), strings.Repeat("a", 511)},
		{strings.Repeat("a", 512), "_" + strings.Repeat("a", 512)}, // too long to pass: encoded, still too long
	} {
		got := EncodeID(tc.in)
		require.Equal(t, tc.want, got, "EncodeID(%q)", tc.in)
		back, err := DecodeID(got)
		require.NoError(t, err, "DecodeID(%q)", got)
		require.Equal(t, tc.in, back)
		require.Regexp(t, meiliIDRe, got)
	}
	require.True(t, ValidID(EncodeID(strings.Repeat("a.", 36))), "36-character Appwrite ids always fit")
	require.False(t, ValidID(EncodeID(strings.Repeat("a", 512))))
}

func TestDecodeIDRejectsWhatEncodeIDNeverWrites(t *testing.T) {
	t.Parallel()
	for _, s := range []string{
		"",                       // EncodeID("") is "_"
		"a.b",                    // not a valid document id
		"_abc",                   // "abc" is stored as is
		"_a_2eb",                 // lower-case hex
		"_a_41b",                 // 'A' needs no escape
		"_a_2",                   // truncated escape
		"_a_",                    // dangling escape
		"_a_ZZb",                 // not hex
		"_a.b",                   // a byte never written
		"a b",                    //
		strings.Repeat("a", 512), // too long to have passed through
	} {
		_, err := DecodeID(s)
		require.ErrorIs(t, err, ErrNotEncodedID, "DecodeID(%q)", s)
	}
}

// FuzzEncodeID: the encoding is injective (two different ids never share a document), DecodeID
// reverses it, it only writes bytes Meilisearch allows, and it leaves valid ids that do not
// start with '_' alone. DecodeID accepts exactly the encodings.
func FuzzEncodeID(f *testing.F) {
	for _, s := range []string{"", "a", "a.b", "a_2Eb", "_a_2Eb", "_", "__5F", "row.1-x", "0123456789abcdef0123456789abcdef0123",
		"main/posts/a.b", "_x", "x_", "é", "\x00", "\xff", "a b"} {
		f.Add(s, s+".")
		f.Add(s, EncodeID(s))
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		ea, eb := EncodeID(a), EncodeID(b)
		if a != b && ea == eb {
			t.Fatalf("EncodeID(%q) == EncodeID(%q) == %q", a, b, ea)
		}
		if ea == "" || !meiliIDRe.MatchString(ea) {
			t.Fatalf("EncodeID(%q) = %q: not made of [A-Za-z0-9_-]", a, ea)
		}
		back, err := DecodeID(ea)
		if err != nil || back != a {
			t.Fatalf("DecodeID(EncodeID(%q)) = %q, %v", a, back, err)
		}
		if ValidID(a) && a[0] != '_' && ea != a {
			t.Fatalf("valid id %q was encoded to %q", a, ea)
		}
		// DecodeID is the exact inverse: whatever it accepts, EncodeID writes.
		if id, err := DecodeID(b); err == nil && EncodeID(id) != b {
			t.Fatalf("DecodeID(%q) = %q but EncodeID(%q) = %q", b, id, id, EncodeID(id))
		}
	})
}
