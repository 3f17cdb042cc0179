package canonjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// reference is the definition Object must match: decode into maps with UseNumber, drop the
// top-level keys drop reports, re-marshal (sorted keys).
func reference(row []byte, drop map[string]bool) ([]byte, error) {
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
	for k := range drop {
		delete(m, k)
	}
	return json.Marshal(m)
}

// canonical is Object's result copied out of the pooled buffer, dropping the keys in drop.
func canonical(row []byte, drop map[string]bool) ([]byte, error) {
	var out []byte
	err := Object(row, func(k []byte) bool { return drop[string(k)] }, func(c []byte) { out = append([]byte(nil), c...) })
	return out, err
}

// routing is a drop set like the content hash's.
var routing = map[string]bool{"$tableId": true, "$collectionId": true, "$databaseId": true}

var canonSeeds = []string{
	`{}`,
	"{\"a\":1} \n",
	`{"$id":"a","title":"x","n":1}`,
	` { "b" : [1, 2.50, -0.1e+3, true, false, null, {"z":1,"a":[]}], "a" : "x" } `,
	`{"$id":"a","$tableId":"posts","$collectionId":"posts","$databaseId":"main","x":{"$tableId":"kept"}}`,
	`{"k":"line\nbreak \"quoted\" \\ back <b>&amp;</b> \u2028 \u00e9 é \ud83d\ude00"}`,
	`{"dup":1,"dup":2,"a":{"d":"x","d":"y"}}`,
	`{"\u0061":"escaped key","a<":1,"é":2}`,
	// PHP's json_encode, as Appwrite sends rows: non-ASCII as \u escapes, / as \/.
	`{"title":"Caf\u00e9 \/ Montr\u00e9al","emoji":"\ud83d\ude00","url":"https:\/\/x.io\/a"}`,
	`{"lone":"\ud800x","low":"\udc00","pair_bad":"\ud800\u0041","ctl":"\u0001\b\f\u001f","html":"\u003c\u003e\u0026","ls":"\u2028 \u2029","q":"\"\\"}`,
	"{\"k\\u00e9\":\"\xe2\x80\xa8\"}",
	`{"a":1,"\u0061":2,"A\u0301":3}`,
	`{"n":-0,"m":0.0,"e":1E5,"big":123456789012345678901234567890}`,
	`{"nested":[[[]],[{}],{"x":[{"y":null}]}]}`,
	// Strings long enough for the eight-bytes-at-a-time paths, special bytes at odd places.
	`{"a long key, plain":"0123456789abcdefghij<klmnopq","another long key \"quoted\"":"tail &"}`,
	"{\"text\":\"lorem ipsum dolor sit amet, caf\u00e9 \u2028 \\\\ \\n end\",\"x\":\"12345678\\u0041bcdefgh\"}",
}

// Every byte value at every position of strings of 8 to 24 bytes: plain's eight-byte fast path
// agrees with the byte-by-byte rule.
func TestPlainEightBytesAtATime(t *testing.T) {
	base := []byte("abcdefghijklmnopqrstuvwx")
	for n := 8; n <= len(base); n++ {
		for pos := 0; pos < n; pos++ {
			for b := 0; b < 256; b++ {
				raw := append([]byte(nil), base[:n]...)
				raw[pos] = byte(b)
				require.Equal(t, plainFrom(raw, 0), plain(raw), "byte %#x at %d of %d", b, pos, n)
			}
		}
	}
	// Multi-byte runes across word boundaries.
	for _, s := range []string{"abcdefgé", "abcdefghé", "ab\u2028cdefghij", "abcdefg\u2029", "abcdefgh\xffij"} {
		require.Equal(t, plainFrom([]byte(s), 0), plain([]byte(s)), "%q", s)
	}
}

func TestObjectMatchesTheReference(t *testing.T) {
	for _, drop := range []map[string]bool{nil, routing} {
		for _, s := range canonSeeds {
			want, err := reference([]byte(s), drop)
			require.NoError(t, err, s)
			got, err := canonical([]byte(s), drop)
			require.NoError(t, err, s)
			require.Equal(t, string(want), string(got), s)
		}
	}
	for _, bad := range []string{``, `[]`, `null`, `"x"`, `{`, `{"a"}`, `{"a":}`, `{"a":01}`, `{"a":1,}`, `{"a":tru}`, `{"a":"x}`, `{"a":-}`, `{"a":1.}`, `{"a":1e}`, `{a:1}`,
		`{"a":1} x`, `{"a":1}{}`, `{"a":[1,2]]`, `{"a":1}}`} {
		_, err := canonical([]byte(bad), nil)
		require.ErrorIs(t, err, ErrNotObject, bad)
	}
	// Only top-level members are dropped.
	got, err := canonical([]byte(`{"$tableId":"posts","x":{"$tableId":"kept"}}`), routing)
	require.NoError(t, err)
	require.Equal(t, `{"x":{"$tableId":"kept"}}`, string(got))
}

// Nesting is limited as encoding/json limits it: 10,000 open objects and arrays pass, one
// more is rejected (and Object does not recurse as deep as a body would allow).
func TestDepthLimit(t *testing.T) {
	nested := func(depth int) []byte {
		inner := depth - 1 // the row object is one level
		return []byte(`{"a":` + strings.Repeat("[", inner) + strings.Repeat("]", inner) + `}`)
	}
	ok := nested(10000)
	require.True(t, json.Valid(ok))
	_, err := canonical(ok, nil)
	require.NoError(t, err)
	deep := nested(10001)
	require.False(t, json.Valid(deep))
	_, err = canonical(deep, nil)
	require.ErrorContains(t, err, "exceeded max depth")
	// The limit is per row: the failed row left no depth behind.
	_, err = canonical(ok, nil)
	require.NoError(t, err)
}

// Object agrees with encoding/json's re-marshalled form on every input: it accepts exactly
// the one-object inputs encoding/json accepts and writes the same bytes for them.
func FuzzObject(f *testing.F) {
	for _, s := range canonSeeds {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"a":1} x`))
	f.Add([]byte("{\"bad utf8\":\"\xff\xfe\"}"))
	f.Fuzz(func(t *testing.T, row []byte) {
		want, werr := reference(row, routing)
		got, gerr := canonical(row, routing)
		if gerr == nil && !json.Valid(row) {
			t.Fatalf("Object accepted %q, which is not valid JSON", row)
		}
		if werr != nil {
			if gerr == nil {
				t.Fatalf("Object accepted %q that encoding/json rejects (%v)", row, werr)
			}
			return
		}
		if gerr != nil {
			t.Fatalf("Object rejected %q that encoding/json accepts: %v", row, gerr)
		}
		if !bytes.Equal(want, got) {
			t.Fatalf("Object(%q) = %s, encoding/json writes %s", row, got, want)
		}
	})
}

// TestCanonicalizerKeepsNoRowAlive: the pairs' keys point into the row being hashed; once an
// object is done they are cleared, so a pooled canonicalizer does not keep an old (possibly
// large) request body reachable.
func TestCanonicalizerKeepsNoRowAlive(t *testing.T) {
	c := &canonicalizer{drop: func(k []byte) bool { return routing[string(k)] }}
	row := []byte(`{"b":{"y":1,"x":[{"q":2,"p":3}]},"a":"v","$tableId":"posts"}`)
	_, err := c.value(row, true)
	require.NoError(t, err)
	require.Equal(t, `{"a":"v","b":{"x":[{"p":3,"q":2}],"y":1}}`, string(c.buf))
	require.Empty(t, c.pairs)
	for i, p := range c.pairs[:cap(c.pairs)] {
		require.Nil(t, p.key, "pair %d still references the row", i)
	}
}
