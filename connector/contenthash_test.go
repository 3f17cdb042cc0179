package connector

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// referenceHash is the definition ContentHash must match: decode into maps with UseNumber,
// drop the volatile top-level keys, re-marshal (sorted keys), hash.
func referenceHash(row []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(row))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("null")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the object")
	}
	for k := range volatileKeys {
		delete(m, k)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b)
	return sum[:16], nil
}

// hashSeeds are rows for the content hash as a whole; the canonical form's corner cases
// (escapes, duplicates, numbers, nesting) are internal/canonjson's seeds.
var hashSeeds = []string{
	`{}`,
	"{\"a\":1} \n",
	`{"$id":"a","title":"x","n":1}`,
	`{"$id":"a","$tableId":"posts","$collectionId":"posts","$databaseId":"main","$collection":"c","$tenant":1,"$table":"t","x":{"$tableId":"kept"}}`,
	// PHP's json_encode, as Appwrite sends rows: non-ASCII as \u escapes, / as \/.
	`{"title":"Caf\u00e9 \/ Montr\u00e9al","emoji":"\ud83d\ude00","url":"https:\/\/x.io\/a"}`,
	`{"\u0024tableId":"an escaped routing key is still one","a":1}`,
}

// invalidUTF8Rows are valid JSON to encoding/json (which replaces the bad bytes) but not
// valid UTF-8: ContentHash refuses them, as the state store would.
var invalidUTF8Rows = []string{
	"{\"bad_utf8\":\"a\xffb\xc3\",\"k\\u00e9\":\"\xe2\x80\xa8\"}",
	"{\"bad utf8\":\"\xff\xfe\"}",
	"{\"key \xc0\xaf\":1}",     // an overlong encoding of '/'
	"{\"s\":\"\xed\xa0\x80\"}", // a surrogate encoded in UTF-8
}

func TestContentHashRefusesInvalidUTF8(t *testing.T) {
	for _, s := range invalidUTF8Rows {
		_, err := referenceHash([]byte(s))
		require.NoError(t, err, "encoding/json takes %q", s)
		_, err = ContentHash([]byte(s))
		require.ErrorIs(t, err, ErrInvalidUTF8, "%q", s)
	}
	_, err := ContentHash([]byte("{\"title\":\"caf\xc3\xa9 \xff\"}"))
	require.EqualError(t, err, "row is not valid UTF-8 (byte 16 is 0xff)")
}

func TestContentHashMatchesTheReference(t *testing.T) {
	for _, s := range hashSeeds {
		want, err := referenceHash([]byte(s))
		require.NoError(t, err, s)
		got, err := ContentHash([]byte(s))
		require.NoError(t, err, s)
		require.Equal(t, want, got, s)
	}
	for _, bad := range []string{``, `[]`, `null`, `"x"`, `{`, `{"a"}`, `{"a":}`, `{"a":01}`, `{"a":1,}`, `{"a":tru}`, `{"a":"x}`, `{"a":-}`, `{"a":1.}`, `{"a":1e}`, `{a:1}`,
		`{"a":1} x`, `{"a":1}{}`, `{"a":[1,2]]`, `{"a":1}}`} {
		_, err := ContentHash([]byte(bad))
		require.Error(t, err, bad)
	}
	// Key order, whitespace and routing keys do not change the hash; content does.
	a, _ := ContentHash([]byte(`{"$id":"r","$tableId":"posts","t":"x","n":1}`))
	b, _ := ContentHash([]byte(`{ "n":1, "t":"x", "$collectionId":"posts", "$id":"r" }`))
	c, _ := ContentHash([]byte(`{"$id":"r","t":"y","n":1}`))
	require.Equal(t, a, b)
	require.NotEqual(t, a, c)
}

// Nesting is limited as encoding/json limits it: 10,000 open objects and arrays pass, one
// more is rejected (and ContentHash does not recurse as deep as a body would allow).
func TestContentHashDepthLimit(t *testing.T) {
	nested := func(depth int) []byte {
		inner := depth - 1 // the row object is one level
		return []byte(`{"a":` + strings.Repeat("[", inner) + strings.Repeat("]", inner) + `}`)
	}
	ok := nested(10000)
	require.True(t, json.Valid(ok))
	_, err := ContentHash(ok)
	require.NoError(t, err)
	deep := nested(10001)
	require.False(t, json.Valid(deep))
	_, err = ContentHash(deep)
	require.ErrorContains(t, err, "exceeded max depth")
	// The limit is per row: the failed row left no depth behind.
	_, err = ContentHash(ok)
	require.NoError(t, err)
}

func FuzzContentHash(f *testing.F) {
	for _, s := range append(hashSeeds, invalidUTF8Rows...) {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"a":1} x`))
	f.Fuzz(func(t *testing.T, row []byte) {
		want, werr := referenceHash(row)
		got, gerr := ContentHash(row)
		if gerr == nil && !json.Valid(row) {
			t.Fatalf("ContentHash accepted %q, which is not valid JSON", row)
		}
		if !utf8.Valid(row) {
			if !errors.Is(gerr, ErrInvalidUTF8) {
				t.Fatalf("ContentHash(%q) = %v, want ErrInvalidUTF8", row, gerr)
			}
			return
		}
		if werr != nil {
			if gerr == nil {
				t.Fatalf("ContentHash accepted %q that encoding/json rejects (%v)", row, werr)
			}
			return
		}
		if gerr != nil {
			t.Fatalf("ContentHash rejected %q that encoding/json accepts: %v", row, gerr)
		}
		if !bytes.Equal(want, got) {
			t.Fatalf("hash of %q differs from encoding/json's canonical form", row)
		}
	})
}

func BenchmarkContentHash(b *testing.B) {
	row := []byte(`{"$id":"r1","$createdAt":"2026-03-26T10:00:00.000+00:00","$updatedAt":"2026-03-26T10:00:00.000+00:00","$permissions":[],"$databaseId":"main","$tableId":"posts","$sequence":"42","title":"` + strings.Repeat("lorem ipsum ", 70) + `","views":42,"author":{"name":"ada","tags":["x","y"]}}`)
	b.SetBytes(int64(len(row)))
	b.Run("canonical", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := ContentHash(row); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := referenceHash(row); err != nil {
				b.Fatal(err)
			}
		}
	})
	// A row as Appwrite sends it (PHP's json_encode: \u00e9, \/): the escaped strings.
	php, err := os.ReadFile(filepath.Join("webhook", "testdata", "bodies", "row.json"))
	require.NoError(b, err)
	b.Run("canonical_appwrite_escapes", func(b *testing.B) {
		b.SetBytes(int64(len(php)))
		for i := 0; i < b.N; i++ {
			if _, err := ContentHash(php); err != nil {
				b.Fatal(err)
			}
		}
	})
}
