package mapping

import (
	"os"
	"path/filepath"
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
