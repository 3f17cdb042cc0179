package mapping

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector"
)

func mustMapping(t *testing.T, src string) *Mapping {
	t.Helper()
	tables, err := parseFile("mapping.yaml", []byte(strings.TrimLeft(src, "\n")), testEnv)
	require.NoError(t, err)
	m, err := New(tables, "")
	require.NoError(t, err)
	return m
}

func mustRow(t testing.TB, s string) Row {
	r, err := DecodeRow([]byte(s))
	require.NoError(t, err)
	return r
}

func TestLookup(t *testing.T) {
	m := mustMapping(t, `
tables:
  - database: "*"
    table: posts
    meilisearch: {index: any_posts}
  - database: main
    table: posts
    meilisearch: {index: main_posts}
`)
	require.Equal(t, "main_posts", m.Lookup(connector.TableKey{Database: "main", Table: "posts"}).Meili.Index)
	require.Equal(t, "any_posts", m.Lookup(connector.TableKey{Database: "other", Table: "posts"}).Meili.Index)
	require.Nil(t, m.Lookup(connector.TableKey{Database: "main", Table: "pages"}))

	byHand := &Mapping{Tables: m.Tables}
	require.Equal(t, "main_posts", byHand.Lookup(connector.TableKey{Database: "main", Table: "posts"}).Meili.Index)
	require.Equal(t, "any_posts", byHand.Lookup(connector.TableKey{Database: "x", Table: "posts"}).Meili.Index)
	require.Nil(t, byHand.Lookup(connector.TableKey{Database: "x", Table: "y"}))
}

func TestDecodeRow(t *testing.T) {
	for _, bad := range []string{``, `null`, `[1]`, `"x"`, `{"a":1} {"b":2}`, `{"a":`, `{"a":1}]`} {
		_, err := DecodeRow([]byte(bad))
		require.Error(t, err, bad)
		require.True(t, connector.IsPermanent(err), bad)
	}
	r := mustRow(t, ` {"$id":"a.b","n":12345678901234567890,"$createdAt":"2026-03-26T10:00:00.123+02:00"} `)
	require.Equal(t, json.Number("12345678901234567890"), r["n"])
	require.Equal(t, "a.b", r.ID())
	at, ok := r.CreatedAt()
	require.True(t, ok)
	require.True(t, at.Equal(time.Date(2026, 3, 26, 8, 0, 0, 123e6, time.UTC)))
	_, ok = r.UpdatedAt()
	require.False(t, ok)
}

func TestMeiliIDAndSharedIndex(t *testing.T) {
	m := mustMapping(t, `
tables:
  - database: "*"
    table: posts
    meilisearch: {index: content, shared_index: true, fields: [title]}
  - database: main
    table: pages
    meilisearch: {index: content, shared_index: true, fields: [title]}
`)
	enc := func(s string) string { return "<" + s + ">" }
	posts := m.Lookup(connector.TableKey{Database: "db2", Table: "posts"})
	key := connector.TableKey{Database: "db2", Table: "posts"}
	require.Equal(t, "<db2/posts/x.y>", posts.MeiliID(key, "x.y", enc))
	doc, err := posts.MeiliDocument(mustRow(t, `{"$id":"x.y","title":"t"}`), key, enc)
	require.NoError(t, err)
	require.Equal(t, map[string]any{"id": "<db2/posts/x.y>", "$id": "x.y", "$table": "db2/posts", "title": "t"}, doc)
	require.Equal(t, []string{FieldTable}, posts.Meili.Settings.Filterable)
}

func TestFingerprints(t *testing.T) {
	const base = `
tables:
  - database: main
    table: posts
    where: {status: published, lang: {in: [en, de]}}
    permissions: {field: read_roles}
    meilisearch: {fields: [title], searchable: [title]}
    postgres: {columns: {title: text}}
`
	fp := func(src string) (string, string) {
		m := mustMapping(t, src)
		return m.Tables[0].Meili.Fingerprint, m.Tables[0].PG.Fingerprint
	}
	mf, pf := fp(base)
	require.Len(t, mf, 16)
	require.NotEqual(t, mf, pf)

	same := func(src string) {
		t.Helper()
		m2, p2 := fp(src)
		require.Equal(t, mf, m2)
		require.Equal(t, pf, p2)
	}
	same(base)
	// Reordered where keys, flow vs block style, a comment: same spec.
	same(`
tables:
  - database: main   # comment
    table: posts
    where:
      lang: {in: [en, de]}
      status: "published"
    permissions: {field: read_roles}
    meilisearch:
      fields: [title]
      searchable: [title]
    postgres:
      columns:
        title: text
`)
	change := func(src string, meiliChanges, pgChanges bool) {
		t.Helper()
		m2, p2 := fp(src)
		require.Equal(t, meiliChanges, m2 != mf, "meilisearch fingerprint changed")
		require.Equal(t, pgChanges, p2 != pf, "postgres fingerprint changed")
	}
	change(strings.Replace(base, "status: published", "status: draft", 1), true, true)
	change(strings.Replace(base, "field: read_roles", "field: roles", 1), true, true)
	change(strings.Replace(base, "searchable: [title]", "searchable: [title, id]", 1), true, false)
	change(strings.Replace(base, "fields: [title]", "fields: [{title: headline}]", 1), true, false)
	change(strings.Replace(base, "title: text}", "title: jsonb}", 1), false, true)
	change(strings.Replace(base, "{columns: {title: text}}", "{columns: {title: text}, delete: soft}", 1), false, true)

	m := mustMapping(t, base)
	m2, err := New(m.Tables, "warehouse")
	require.NoError(t, err)
	require.NotEqual(t, pf, m2.Tables[0].PG.Fingerprint, "schema is part of the postgres spec")
	require.Equal(t, mf, m2.Tables[0].Meili.Fingerprint)
}

func TestDDL(t *testing.T) {
	m := mustMapping(t, `
tables:
  - database: main
    table: Posts
    postgres:
      columns:
        Title: text
      indexes:
        - {columns: [Title, updated_at], unique: true}
`)
	p := m.Tables[0].PG
	require.Equal(t, `"appwrite"."Posts"`, p.QualifiedTable())
	require.Equal(t, []string{
		`CREATE SCHEMA IF NOT EXISTS "appwrite"`,
		"CREATE TABLE IF NOT EXISTS \"appwrite\".\"Posts\" (\n" +
			"  \"id\" text PRIMARY KEY,\n" +
			"  \"created_at\" timestamptz,\n" +
			"  \"updated_at\" timestamptz NOT NULL,\n" +
			"  \"version_hash\" bytea NOT NULL DEFAULT ''::bytea,\n" +
			"  \"version_seq\" bigint,\n" +
			"  \"Title\" text,\n" +
			"  \"synced_at\" timestamptz NOT NULL DEFAULT now()\n)",
		`CREATE INDEX IF NOT EXISTS "Posts_updated_at_idx" ON "appwrite"."Posts" ("updated_at")`,
		`CREATE UNIQUE INDEX IF NOT EXISTS "Posts_Title_updated_at_key" ON "appwrite"."Posts" ("Title", "updated_at")`,
	}, p.DDL())
	require.Equal(t, DeleteHard, p.Delete)

	plan := m.Plan()
	require.Contains(t, plan, "main/Posts  (mapping.yaml:2, tables[0])")
	require.Contains(t, plan, `CREATE SCHEMA IF NOT EXISTS "appwrite";`)
	require.Contains(t, plan, "postgres  (fingerprint "+p.Fingerprint+")")
}

func TestRelName(t *testing.T) {
	long := strings.Repeat("t", 63)
	a, b := relName(long, "a_idx"), relName(long, "b_idx")
	require.Len(t, a, 63)
	require.NotEqual(t, a, b)
	require.Equal(t, "posts_updated_at_idx", relName("posts", "updated_at_idx"))
}

func TestWhereNumbers(t *testing.T) {
	m := mustMapping(t, `
tables:
  - database: main
    table: posts
    where: {n: 9007199254740993, f: 1e3, b: true, s: "5", z: 0}
    meilisearch: {}
`)
	tbl := m.Tables[0]
	require.True(t, tbl.Matches(mustRow(t, `{"n":9007199254740993,"f":1000,"b":true,"s":"5","z":-0}`)))
	require.True(t, tbl.Matches(mustRow(t, `{"n":9007199254740993,"f":1000.0,"b":true,"s":"5","z":0.0}`)))
	require.False(t, tbl.Matches(mustRow(t, `{"n":9007199254740992,"f":1000,"b":true,"s":"5","z":0}`)), "no float rounding")
	require.False(t, tbl.Matches(mustRow(t, `{"n":9007199254740993,"f":1000,"b":"true","s":"5","z":0}`)), "string is not bool")
	require.False(t, tbl.Matches(mustRow(t, `{"n":9007199254740993,"f":1000,"b":true,"s":5,"z":0}`)), "number is not string")
	require.False(t, tbl.Matches(mustRow(t, `{"f":1000,"b":true,"s":"5","z":0}`)), "missing is not a number")
	// Rows decoded without UseNumber still compare.
	require.True(t, tbl.Matches(Row{"n": json.Number("9007199254740993"), "f": 1000.0, "b": true, "s": "5", "z": 0}))
}

func TestConvertEdges(t *testing.T) {
	for s, ok := range map[string]bool{"0": true, "-0": true, "1.5e-3": true, "1E+2": true, "01": false, "1.": false,
		".5": false, "+1": false, "1e": false, "": false, "-": false, "NaN": false, "Infinity": false, "0x1F": false, "1_000": false} {
		require.Equal(t, ok, IsJSONNumber(s), s)
	}
	for s, want := range map[string]any{"1e3": int64(1000), "0.5e1": int64(5), "-0": int64(0), "5.000": int64(5),
		"1e-1": errNotWhole, "1e30": errOutOfRange, "1e999999999": errOutOfRange, "-9223372036854775809": errOutOfRange} {
		got, err := toInt(json.Number(s), -1<<63, 1<<63-1)
		if e, isErr := want.(error); isErr {
			require.ErrorIs(t, err, e, s)
		} else {
			require.NoError(t, err, s)
			require.Equal(t, want, got, s)
		}
	}
	require.True(t, numericInRange("1e131071"))
	require.False(t, numericInRange("1e131072"))
	require.True(t, numericInRange("0e99999"))
	require.False(t, numericInRange("1e-16384"))
	require.True(t, hasNULEscape([]byte(`"a\u0000"`)))
	require.False(t, hasNULEscape([]byte(`"a\\u0000"`)), "an escaped backslash followed by u0000")
	require.True(t, hasNULEscape([]byte(`"a\\\u0000"`)))

	f, err := toFloat(json.Number("1e400"))
	require.ErrorIs(t, err, errOutOfRange, "%v", f)
	d, err := toDate("2026-03-26T23:30:00.000-05:00")
	require.NoError(t, err)
	require.Equal(t, time.Date(2026, 3, 26, 0, 0, 0, 0, time.UTC), d, "the date as written, not converted to UTC")
}

func TestPaths(t *testing.T) {
	r := mustRow(t, `{"a":{"0":"key zero","b":[{"c":[1,2]},{"c":3},{"c":null},{"d":4},5]},"list":[["x"],["y","z"]]}`)
	get := func(s string) (any, bool) {
		p, err := compilePath(s)
		require.NoError(t, err)
		return p.get(r)
	}
	v, ok := get("a.0")
	require.True(t, ok)
	require.Equal(t, "key zero", v, "a digit segment is an object key on objects")
	v, _ = get("a.b.c")
	require.Equal(t, []any{json.Number("1"), json.Number("2"), json.Number("3")}, v, "fan-out flattens lists, drops null and missing")
	v, _ = get("a.b.1.c")
	require.Equal(t, json.Number("3"), v)
	_, ok = get("a.b.9")
	require.False(t, ok)
	v, _ = get("list.0")
	require.Equal(t, []any{"x"}, v)
	_, ok = get("a.x.y")
	require.False(t, ok)
	for _, bad := range []string{"", ".", "a.", ".a", "a..b"} {
		_, err := compilePath(bad)
		require.Error(t, err, bad)
	}
}

func TestNoSinkSectionErrors(t *testing.T) {
	m := mustMapping(t, `
tables:
  - database: main
    table: posts
    meilisearch: {}
`)
	_, err := m.Tables[0].PostgresValues(Row{})
	require.Error(t, err)
	require.False(t, connector.IsPermanent(err))
}

// A Mapping is shared by every sink worker: projecting concurrently must be safe (run with -race).
func TestConcurrentProjection(t *testing.T) {
	m := loadGoldenMapping(t, "testdata/to_many")
	rows, _ := loadGoldenRows(t, "testdata/to_many")
	tbl := m.Tables[0]
	key := tbl.Key()
	done := make(chan struct{})
	for g := 0; g < 4; g++ {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := 0; i < 50; i++ {
				for _, raw := range rows {
					r, err := DecodeRow(raw)
					if err != nil {
						panic(err)
					}
					tbl.Matches(r)
					if _, err := tbl.MeiliDocument(r, key, identity); err != nil {
						panic(err)
					}
					if _, err := tbl.PostgresValues(r); err != nil {
						panic(err)
					}
				}
			}
		}()
	}
	for g := 0; g < 4; g++ {
		<-done
	}
}
