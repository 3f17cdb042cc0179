package rawjson

import (
	"bytes"
	"encoding/json"
	"math/big"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// What Postgres 15 returns for `SELECT $1::jsonb::text` (checked in psql; the audit package's
// TestCanonicalFormMatchesPostgres holds AppendJSONB to a live server).
var jsonbRendered = map[string]string{
	`{}`:                             `{}`,
	` [ ] `:                          `[]`,
	`{"b":1,"aa":2,"a":3,"a":4}`:     `{"a": 4, "b": 1, "aa": 2}`,
	"{\"é\":1,\"ab\":2}":             `{"ab": 2, "é": 1}`,
	`{"z":{"y":[1,{"b":2,"a":[]}]}}`: `{"z": {"y": [1, {"a": [], "b": 2}]}}`,
	`[-0, -0.0, 1.50, 0.000, -0.10]`: `[0, 0.0, 1.50, 0.000, -0.10]`,
	`12345678901234567890.123`:       `12345678901234567890.123`,
	`"\u00e9\/\u001f\u007f\t\b\f\r\n\"\\\u0022\u005c"`: "\"é/\\u001f\x7f\\t\\b\\f\\r\\n\\\"\\\\\\\"\\\\\"",
	`"\ud83d\ude00 \u2028"`:                            "\"😀 \u2028\"",
	`{"k\u00e9y":"v","k\n":true}`:                      `{"k\n": true, "kéy": "v"}`,
	"\t{\"a\" :\r\nnull , \"b\":false}\n":              `{"a": null, "b": false}`,
	`"a"`:                                              `"a"`,
	`{"dup":{"x":1},"dup":[2]}`:                        `{"dup": [2]}`,
	`[1.0E-7, 1e2, 1.5e1, 1.25e1, -0e0, 0.0e5, 0.000e2, -1.5E+3, 12.5e-1, 1e-2, -0.001e3, 9.99e0, 1E+0, 5e-0, 123.456e1, 0.01e1]`: `[0.00000010, 100, 15, 12.5, 0, 0, 0.0, -1500, 1.25, 0.01, -1, 9.99, 1, 5, 1234.56, 0.1]`,
}

func TestAppendJSONB(t *testing.T) {
	t.Parallel()
	for in, want := range jsonbRendered {
		out, ok := AppendJSONB([]byte("prefix:"), []byte(in))
		require.True(t, ok, in)
		require.Equal(t, "prefix:"+want, string(out), in)
	}
	// Declined: what numeric writes out differently, what jsonb refuses, what is not JSON.
	for _, in := range []string{
		`1e101`, `[1.5E-101]`, `{"n":1e1000000}`, "[" + strings.Repeat("9", maxJSONBNumber+1) + "]",
		strings.Repeat("[", maxJSONBDepth+1) + strings.Repeat("]", maxJSONBDepth+1),
		`{"a":"\u0000"}`, `{"a":"\ud800"}`, `{"a":"\udc00\ud800"}`, `{"a":"\ud800\u0041"}`, "{\"a\":\"\xff\"}",
		`{"a":1,}`, `{"a" 1}`, `[1 2]`, `01`, `{"a":1}x`, `tru`, `"a`, "\"a\nb\"", `{"a":"\x"}`, ``, `{"a":"\u12"}`,
	} {
		out, ok := AppendJSONB([]byte("prefix:"), []byte(in))
		require.False(t, ok, in)
		require.Equal(t, "prefix:", string(out), in)
	}
	s := AppendJSONBString(nil, "a\"b\\c\x01\té/")
	require.Equal(t, `"a\"b\\c\u0001\té/"`, string(s))
}

// FuzzAppendJSONB: what AppendJSONB renders is JSON with the input's meaning (jsonb keeps the
// last of duplicate keys, as encoding/json does; numbers keep their values), rendering it
// again changes nothing, and valid input it declines is only what it declines by design.
func FuzzAppendJSONB(f *testing.F) {
	for in := range jsonbRendered {
		f.Add(in)
	}
	f.Add(`{"a":[1,2,{"c":"\ud83d\ude00","b":null}],"a ":1e3}`)
	f.Fuzz(func(t *testing.T, in string) {
		out, ok := AppendJSONB(nil, []byte(in))
		if !ok {
			return
		}
		require.True(t, json.Valid(out), "%q -> %q", in, out)
		require.Equal(t, decodeNormalized(t, []byte(in)), decodeNormalized(t, out), "%q -> %q", in, out)
		again, ok := AppendJSONB(nil, out)
		require.True(t, ok)
		require.Equal(t, string(out), string(again))
	})
}

// decodeNormalized decodes JSON with numbers as their exact values (numeric writes 1e2 as 100,
// and has no negative zero).
func decodeNormalized(t *testing.T, s []byte) any {
	d := json.NewDecoder(bytes.NewReader(s))
	d.UseNumber()
	var v any
	require.NoError(t, d.Decode(&v))
	var norm func(v any) any
	norm = func(v any) any {
		switch x := v.(type) {
		case json.Number:
			r, ok := new(big.Rat).SetString(string(x))
			require.True(t, ok, x)
			return r.RatString()
		case []any:
			for i := range x {
				x[i] = norm(x[i])
			}
		case map[string]any:
			for k := range x {
				x[k] = norm(x[k])
			}
		}
		return v
	}
	return norm(v)
}
