package mapping

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector"
)

const benchMapping = `
tables:
  - database: main
    table: posts
    where: {status: published, archived: {not: true}}
    permissions: {field: read_roles}
    meilisearch:
      fields: [title, slug, body, summary, status, lang, category, tags, views, likes, score, price,
               featured, archived, published_at, day, meta, ratings, {author_name: author.name}, {author_id: author.$id}]
      searchable: [title, summary, body]
      filterable: [tags, category]
      sortable: [views, published_at]
    postgres:
      columns:
        title: text
        slug: text
        body: text
        summary: text
        status: text
        lang: text
        category: text
        tags: "text[]"
        views: bigint
        likes: integer
        score: double precision
        price: numeric
        featured: boolean
        archived: boolean
        published_at: timestamptz
        day: date
        meta: jsonb
        ratings: "bigint[]"
        author_name: {from: author.name, type: text}
        author_id: {from: author.$id, type: text}
`

// benchRow is a 1 KiB Appwrite row with 20 mapped fields.
const benchRow = `{"$id":"post.2026-03-26.0001","$sequence":"123456","$createdAt":"2026-03-26T10:00:00.123+00:00",` +
	`"$updatedAt":"2026-03-27T11:30:00.456+00:00","$permissions":["read(\"any\")","update(\"user:u1\")","read(\"team:editors\")"],` +
	`"$databaseId":"main","$tableId":"posts","title":"Keeping Meilisearch and Postgres in sync with Appwrite",` +
	`"slug":"keeping-meilisearch-and-postgres-in-sync","body":"A sidecar receives Appwrite webhooks, verifies them, records each change durably and applies it to every sink in order. ` +
	`Rows are projected through a YAML mapping into documents and warehouse rows.","summary":"How the sidecar keeps indexes exact.",` +
	`"status":"published","lang":"en","category":"engineering","tags":["appwrite","meilisearch","postgres","sync"],` +
	`"views":123456,"likes":789,"score":4.75,"price":"19.99","featured":true,"archived":false,` +
	`"published_at":"2026-03-26T09:00:00.000+00:00","day":"2026-03-26","meta":{"source":"import","version":3,"flags":["a","b"]},` +
	`"ratings":[5,4,5,3,5],"author":{"$id":"user.42","name":"Ada Lovelace","$createdAt":"2025-01-01T00:00:00.000+00:00"}}`

// BenchmarkProject measures one row through both sinks: DecodeRow + Matches + MeiliDocument +
// PostgresValues.
func BenchmarkProject(b *testing.B) {
	tables, err := parseFile("bench.yaml", []byte(benchMapping), testEnv)
	require.NoError(b, err)
	m, err := New(tables, "")
	require.NoError(b, err)
	tbl := m.Tables[0]
	key := connector.TableKey{Database: "main", Table: "posts"}
	raw := []byte(benchRow)
	require.InDelta(b, 1024, len(raw), 128, "row size")
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		r, err := DecodeRow(raw)
		if err != nil {
			b.Fatal(err)
		}
		if !tbl.Matches(r) {
			b.Fatal("row does not match")
		}
		if _, err := tbl.MeiliDocument(r, key, identity); err != nil {
			b.Fatal(err)
		}
		if _, err := tbl.PostgresValues(r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeRow and BenchmarkProjectDecoded split BenchmarkProject into its two halves.
func BenchmarkDecodeRow(b *testing.B) {
	raw := []byte(benchRow)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeRow(raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkProjectDecoded(b *testing.B) {
	tables, err := parseFile("bench.yaml", []byte(benchMapping), testEnv)
	require.NoError(b, err)
	m, err := New(tables, "")
	require.NoError(b, err)
	tbl := m.Tables[0]
	key := connector.TableKey{Database: "main", Table: "posts"}
	r, err := DecodeRow([]byte(benchRow))
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		if !tbl.Matches(r) {
			b.Fatal("row does not match")
		}
		if _, err := tbl.MeiliDocument(r, key, identity); err != nil {
			b.Fatal(err)
		}
		if _, err := tbl.PostgresValues(r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeRowEncodingJSON is the reference DecodeRow replaces (encoding/json with
// UseNumber), for comparison.
func BenchmarkDecodeRowEncodingJSON(b *testing.B) {
	raw := []byte(benchRow)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := referenceDecode(raw); !ok {
			b.Fatal("reference decode failed")
		}
	}
}

// BenchmarkDecodeRowNarrow decodes benchRow for a warehouse table that maps three of its
// columns (as the ingest benchmark's mapping does): the whole row, and only what the
// projection reads.
func BenchmarkDecodeRowNarrow(b *testing.B) {
	tables, err := parseFile("narrow.yaml", []byte(`
tables:
  - database: main
    table: posts
    postgres:
      columns:
        title: text
        views: bigint
        author_name: {from: author.name, type: text}
`), testEnv)
	require.NoError(b, err)
	m, err := New(tables, "")
	require.NoError(b, err)
	tbl := m.Tables[0]
	raw := []byte(benchRow)
	b.SetBytes(int64(len(raw)))
	for _, bc := range []struct {
		name   string
		decode func([]byte) (Row, error)
	}{{"all", DecodeRow}, {"for_postgres", tbl.DecodeRowForPostgres}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r, err := bc.decode(raw)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := tbl.PostgresValues(r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecodeRowNarrowMeili decodes benchRow for an index that names three fields (as the
// backfill benchmark's mapping does): the whole row, and only what the document reads.
func BenchmarkDecodeRowNarrowMeili(b *testing.B) {
	tables, err := parseFile("narrow.yaml", []byte(`
tables:
  - database: main
    table: posts
    meilisearch:
      index: posts
      fields: [title, views, {author_name: author.name}]
`), testEnv)
	require.NoError(b, err)
	m, err := New(tables, "")
	require.NoError(b, err)
	tbl := m.Tables[0]
	raw := []byte(benchRow)
	b.SetBytes(int64(len(raw)))
	id := func(s string) string { return s }
	for _, bc := range []struct {
		name   string
		decode func([]byte) (Row, error)
	}{{"all", DecodeRow}, {"for_meili", tbl.DecodeRowForMeili}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r, err := bc.decode(raw)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := tbl.MeiliDocument(r, tbl.Key(), id); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
