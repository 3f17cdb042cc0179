package mapping

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector"
)

// fuzzMapping exercises every column type, renames, nested and to-many paths, dotted keys,
// where operators and permissions.
const fuzzMapping = `
tables:
  - database: main
    table: posts
    where:
      status: {not: draft}
      kind: {not_in: [spam, 5, true, null]}
    permissions: {field: read_roles}
    meilisearch:
      fields: [title, tags, author, {author_name: author.name}, {bodies: comments.body}, {first: comments.0.body}, "$createdAt", {dotted: meta.v1}]
      searchable: [title, author_name]
    postgres:
      columns:
        title: text
        views: bigint
        rank: integer
        score: double precision
        price: numeric
        flag: boolean
        at: timestamptz
        day: date
        meta: jsonb
        tags: "text[]"
        ids: "bigint[]"
        author_name: {from: author.name, type: text}
        bodies: {from: comments.body, type: "text[]"}
        likes: {from: comments.likes, type: "bigint[]"}
        created: {from: "$createdAt", type: timestamptz}
        dotted: {from: meta.v1, type: text}
`

// FuzzProject feeds arbitrary bytes through DecodeRow, Matches, MeiliDocument and
// PostgresValues of a fixed mapping: nothing may panic, every error must be permanent, and
// every value must have the Go type documented for its column.
func FuzzProject(f *testing.F) {
	tables, err := parseFile("fuzz.yaml", []byte(fuzzMapping), testEnv)
	require.NoError(f, err)
	m, err := New(tables, "")
	require.NoError(f, err)
	tbl := m.Tables[0]
	key := connector.TableKey{Database: "main", Table: "posts"}

	dirs, _ := os.ReadDir("testdata")
	for _, de := range dirs {
		if raw, err := os.ReadFile(filepath.Join("testdata", de.Name(), "row.json")); err == nil {
			f.Add(raw)
		}
	}
	f.Add([]byte(`{"$id":"a","views":"1e5","rank":"2147483647.0","price":"-0.0e-0","flag":"false","at":"2026-03-26 10:00:00+01:00","day":"2026-03-26","tags":["a",null],"ids":[null,"7"],"author":{"name":{"x":1}},"comments":[{"body":"b","likes":[1,[2]]}]}`))
	f.Add([]byte(`{"$id":"","$permissions":[1,"read(\"\")","read(\"any\")",null,{}],"meta":{"v1":"x"},"meta.v1":1}`))

	f.Fuzz(func(t *testing.T, raw []byte) {
		r, err := DecodeRow(raw)
		if err != nil {
			require.True(t, connector.IsPermanent(err))
			return
		}
		_ = tbl.Matches(r)
		doc, err := tbl.MeiliDocument(r, key, identity)
		if err != nil {
			require.True(t, connector.IsPermanent(err))
		} else {
			require.Equal(t, r.ID(), doc[FieldID])
			require.Equal(t, r.ID(), doc["id"])
			require.NotNil(t, doc["read_roles"])
		}
		vals, err := tbl.PostgresValues(r)
		if err != nil {
			require.True(t, connector.IsPermanent(err))
			return
		}
		require.Len(t, vals, len(tbl.PG.Columns))
		for i, c := range tbl.PG.Columns {
			requireGoType(t, c, vals[i])
		}
	})
}

// referenceDecode is DecodeRow's specification: encoding/json with UseNumber, one object.
func referenceDecode(raw []byte) (map[string]any, bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false
	}
	return m, true
}

// FuzzDecodeRow checks that DecodeRow accepts and rejects exactly what encoding/json does and
// produces the same values.
func FuzzDecodeRow(f *testing.F) {
	for _, s := range []string{`{}`, ` {"a":1} `, `{"a":[1,{"b":null}],"c":"\u00e9\ud83d\ude00\ud800x\udc00"}`,
		`{"a":"\xff\xfe"}`, `{"a":1,"a":2}`, `{"a":-0.5e+10}`, `{"a":01}`, `{"a":1.}`, `{"a":"\u12"}`,
		`{"a":tru}`, `{"a":[1,]}`, `{"a":1,}`, `[]`, `null`, `{"a":1}x`, `{"a":"` + "\x01" + `"}`,
		`{"\ud800\u0041":"\uDBFF\uDFFF\/\b\f\n\r\t"}`, "{\"a\":\"\xed\xa0\x80\"}",
		"{\"a\":\"é\\n\"}", "{\"a\":\"\xff\\n\"}", "{\"\xe9\\u00e9\":1}", "{\"a\":\"é\x01\"}", "{\"a\":\"\xc3\"}",
		`{"a":"\ud83d\u0041\ude00"}`, `{"a":"\ud83d"}`, `{"a":"\ud83d\`, `{"a":"x`, `{"a`, `{"a":`, `{"a":1`, `{"a":[`,
		`{"a":1e}`, `{"a":-}`, `{"a":1.5E+}`, `{"a":nul}`, `{"a":truex}`, " \t\r\n{}\n",
		`{"a":` + strings.Repeat("[", 9999) + strings.Repeat("]", 9999) + `}`,
		`{"a":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`,
		`{"b":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`,
		`{"b":{"x":[1,"\u00e9",{"y":null}],"z":tru},"a":1}`,
		// Long strings: the special byte in the first, second and third word, after non-ASCII.
		`{"a":"abcdefgh\"ijklmnop","c":"abcdefghijklmno\\q"}`, "{\"a\":\"abcdefghijklmnopqrst\x01uv\"}",
		"{\"a\":\"abcdéfghijklmnop\xffqrstuvwxyz\"}", "{\"a\":\"abcdefgh\x7fijklmn\\u00e9op\",\"c\":\"0123456789abcdef\"}", `{"b":{"x":1,},"a":1}`, `{"b":"\q","a":1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		want, ok := referenceDecode(raw)
		got, err := DecodeRow(raw)
		// Building only some members checks the rest all the same.
		keep := map[string]bool{"a": true, "c": true}
		part, perr := decodeObjectKeys(raw, keep)
		if !ok {
			require.Error(t, err, "encoding/json rejects %q", raw)
			require.Error(t, perr, "encoding/json rejects %q", raw)
			return
		}
		require.NoError(t, err, "encoding/json accepts %q", raw)
		require.Equal(t, want, map[string]any(got))
		require.NoError(t, perr, "encoding/json accepts %q", raw)
		for k := range keep {
			if v, ok := want[k]; ok {
				require.Equal(t, v, part[k], "member %q of %q", k, raw)
			}
		}
		for k := range part {
			require.True(t, keep[k], "member %q was not to be built", k)
		}
	})
}

// FuzzAppendJSON checks that appendJSON writes exactly what json.Marshal writes for every
// decoded row.
func FuzzAppendJSON(f *testing.F) {
	for _, s := range []string{`{"a":"<&>\u2028\u2029\u0000\u001f\b\f\n\r\t\"\\"}`, `{"b":[1,-2.5e3,true,null,{"z":1,"a":{}}]}`,
		"{\"c\":\"\xff\xfeé😀\"}", `{"":""}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, err := DecodeRow(raw)
		if err != nil {
			return
		}
		want, err := json.Marshal(map[string]any(r))
		require.NoError(t, err)
		got, err := appendJSON(nil, map[string]any(r))
		require.NoError(t, err)
		require.Equal(t, string(want), string(got))
	})
}
