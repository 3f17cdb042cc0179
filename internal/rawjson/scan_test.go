package rawjson

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func members(t testing.TB, obj string) ([][2]string, error) {
	var out [][2]string
	err := EachMember([]byte(obj), func(k, v []byte) error {
		out = append(out, [2]string{string(k), string(v)})
		return nil
	})
	return out, err
}

func TestEachMemberAndElement(t *testing.T) {
	got, err := members(t, ` { "a" : 1 , "b":"x\"}y", "c":{"d":[1,{"e":"]"}]}, "f":[], "g":null,"h":-1.5e3} `)
	require.NoError(t, err)
	require.Equal(t, [][2]string{{"a", "1"}, {"b", `"x\"}y"`}, {"c", `{"d":[1,{"e":"]"}]}`}, {"f", "[]"}, {"g", "null"}, {"h", "-1.5e3"}}, got)
	got, err = members(t, `{}`)
	require.NoError(t, err)
	require.Empty(t, got)
	for _, bad := range []string{``, `[]`, `{`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{"a":[1}`, `{"a":{]}`, `{"a":"x}`, `{"a":1 "b":2}`, `{a:1}`} {
		_, err := members(t, bad)
		require.Error(t, err, bad)
	}
	var els []string
	require.NoError(t, EachElement([]byte(` [ {"$id":"a"} , {"$id":"b","x":[1,2]} ] `), func(v []byte) error {
		els = append(els, string(v))
		return nil
	}))
	require.Equal(t, []string{`{"$id":"a"}`, `{"$id":"b","x":[1,2]}`}, els)
	require.Error(t, EachElement([]byte(`[1,]`), func([]byte) error { return nil }))
	require.Error(t, EachElement([]byte(`[1`), func([]byte) error { return nil }))
}

// On valid JSON objects the scanner agrees with encoding/json on every member.
func FuzzEachMember(f *testing.F) {
	for _, s := range []string{
		`{}`,
		` { "b" : [1, 2.50, -0.1e+3, true, false, null, {"z":1,"a":[]}], "a" : "x" } `,
		`{"k":"line\nbreak \"quoted\" \\ back <b>&amp;</b> \u2028 \u00e9 é \ud83d\ude00"}`,
		`{"dup":1,"dup":2,"a":{"d":"x","d":"y"}}`,
		`{"\u0061":"escaped key","a<":1,"é":2}`,
		`{"title":"Caf\u00e9 \/ Montr\u00e9al","url":"https:\/\/x.io\/a"}`,
		`{"nested":[[[]],[{}],{"x":[{"y":null}]}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, obj []byte) {
		var want map[string]json.RawMessage
		if json.Unmarshal(obj, &want) != nil || want == nil || !json.Valid(obj) {
			return
		}
		got := map[string]json.RawMessage{}
		err := EachMember(obj, func(k, v []byte) error {
			var key string
			if err := json.Unmarshal(append(append([]byte{'"'}, k...), '"'), &key); err != nil {
				return err
			}
			got[key] = append(json.RawMessage(nil), v...)
			return nil
		})
		if err != nil {
			t.Fatalf("EachMember rejected valid %q: %v", obj, err)
		}
		if len(got) != len(want) {
			t.Fatalf("%q: %d members, encoding/json has %d", obj, len(got), len(want))
		}
		for k, v := range want {
			if !bytes.Equal(bytes.TrimSpace(v), got[k]) {
				t.Fatalf("%q: member %q = %q, encoding/json says %q", obj, k, got[k], v)
			}
		}
	})
}

func TestString(t *testing.T) {
	for raw, want := range map[string]struct {
		s      string
		ok, er bool
	}{
		``:             {},
		`null`:         {},
		`"plain"`:      {s: "plain", ok: true},
		`""`:           {s: "", ok: true},
		`"a\"b\u00e9"`: {s: `a"bé`, ok: true},
		`"bad\q"`:      {er: true},
		`12`:           {er: true},
		`{"a":1}`:      {er: true},
	} {
		s, ok, err := String([]byte(raw))
		require.Equal(t, want.er, err != nil, "%s: %v", raw, err)
		require.Equal(t, want.ok, ok, raw)
		require.Equal(t, want.s, s, raw)
	}
}

// StringEnd's fast path (no backslash before the first quote) and its byte loop (escapes) find
// the same ends.
func TestStringEnd(t *testing.T) {
	for _, c := range []struct {
		in  string
		end int // -1: unterminated
	}{
		{`"" x`, 2},
		{`"plain text, long enough for the vector search" x`, 47},
		{`"a\"b" x`, 6},
		{`"ab\\" x`, 6},
		{`"ab\\\"c" x`, 9},
		{`"\\\\" x`, 6},
		{`"x\"`, -1},
		{`"abc`, -1},
		{`"`, -1},
	} {
		end, err := StringEnd([]byte(c.in), 0)
		if c.end < 0 {
			require.ErrorIs(t, err, ErrMalformed, c.in)
			continue
		}
		require.NoError(t, err, c.in)
		require.Equal(t, c.end, end, c.in)
	}
}
