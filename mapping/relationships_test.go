package mapping

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector"
)

const relMapping = `
tables:
  - database: main
    table: authors
    relationships:
      company: companies
  - database: main
    table: companies
  - database: main
    table: posts
    relationships:
      author: authors
      tags: {table: tags, database: other}
    meilisearch: {fields: [title, {author_name: author.name}, {tag_names: tags.name}]}
    postgres: {columns: {title: text, company: {from: author.company.name, type: text}}}
  - database: other
    table: tags
`

// A table with neither sink is valid (recorded for joins), relationships parse in both
// forms, and the depth counts the relationships a path walks through.
func TestRelationshipsParse(t *testing.T) {
	t.Parallel()
	m := mustMapping(t, relMapping)
	posts := m.Lookup(connector.TableKey{Database: "main", Table: "posts"})
	require.Equal(t, []string{"author -> authors", "tags -> other/tags"}, []string{posts.Relationships()[0].String(), posts.Relationships()[1].String()})
	require.Nil(t, m.Lookup(connector.TableKey{Database: "main", Table: "authors"}).Meili)
	require.True(t, m.IsRelated(connector.TableKey{Database: "main", Table: "authors"}))
	require.True(t, m.IsRelated(connector.TableKey{Database: "other", Table: "tags"}))
	require.False(t, m.IsRelated(connector.TableKey{Database: "main", Table: "tags"}), "tags are related in database other only")
	require.False(t, m.IsRelated(connector.TableKey{Database: "main", Table: "posts"}))
	require.Equal(t, 2, m.JoinDepth(), "author.company.name walks two relationships")

	plan := m.Plan()
	require.Contains(t, plan, "relationship graph")
	require.Contains(t, plan, "main/posts.author -> main/authors  (recorded for joins only)")
	require.Contains(t, plan, "main/posts.tags -> other/tags")
	require.Contains(t, plan, "main/authors.company -> main/companies")
}

// A relationship to a table that is not listed is refused where it is declared, with the fix
// and a did-you-mean.
func TestRelationshipToUnlistedTable(t *testing.T) {
	t.Parallel()
	msg := problems(t, `
tables:
  - database: main
    table: authors
  - database: main
    table: posts
    relationships:
      author: autors
      tags: {table: tags, database: other}
    meilisearch: {}
`)
	require.Contains(t, msg, `mapping.yaml:7: tables[1].relationships.author: relationship author: table main/autors is not listed under tables; did you mean "authors"? Or list the related table under tables: (`+"`- {database: main, table: autors}`")
	require.Contains(t, msg, `mapping.yaml:8: tables[1].relationships.tags: relationship tags: table other/tags is not listed under tables`)
	require.Contains(t, problems(t, `
tables:
  - database: main
    table: posts
    relationships: {author: [x]}
`), "must be a table id or {table: <id>, database: <id>}")
}

// Adding a relationship changes the fingerprints of the tables that read through it, so their
// rows are re-projected; a mapping without relationships keeps its fingerprint.
func TestFingerprintIncludesRelationships(t *testing.T) {
	t.Parallel()
	base := `
tables:
  - database: main
    table: authors
  - database: main
    table: posts
%s    meilisearch: {fields: [title, {author_name: author.name}]}
    postgres: {columns: {title: text}}
`
	without := mustMapping(t, strings.Replace(base, "%s", "", 1)).Lookup(connector.TableKey{Database: "main", Table: "posts"})
	with := mustMapping(t, strings.Replace(base, "%s", "    relationships: {author: authors}\n", 1)).Lookup(connector.TableKey{Database: "main", Table: "posts"})
	require.NotEqual(t, without.Meili.Fingerprint, with.Meili.Fingerprint)
	require.NotEqual(t, without.PG.Fingerprint, with.PG.Fingerprint)
	require.Equal(t, "a8bbe9eb69b9c2d3", without.PG.Fingerprint, "a mapping without relationships keeps the fingerprint it had (the value before relationships existed)")
}

// Every payload shape of a relationship column gives its links; a column the payload leaves
// out is not present (its links stay as recorded).
func TestLinksFromEveryPayloadShape(t *testing.T) {
	t.Parallel()
	m := mustMapping(t, relMapping)
	key := connector.TableKey{Database: "main", Table: "posts"}
	posts := m.Lookup(key)
	authors := connector.TableKey{Database: "main", Table: "authors"}
	tags := connector.TableKey{Database: "other", Table: "tags"}
	cases := []struct {
		name    string
		row     string
		links   []Link
		present []string
	}{
		{"id string", `{"author":"a1"}`, []Link{{"author", -1, authors, "a1"}}, []string{"author"}},
		{"object with $id (its other fields ignored)", `{"author":{"$id":"a1","name":"stale"}}`, []Link{{"author", -1, authors, "a1"}}, []string{"author"}},
		{"null", `{"author":null}`, nil, []string{"author"}},
		{"list of ids", `{"tags":["t1","t2"]}`, []Link{{"tags", 0, tags, "t1"}, {"tags", 1, tags, "t2"}}, []string{"tags"}},
		{"list of objects", `{"tags":[{"$id":"t1"},{"$id":"t2","name":"x"}]}`, []Link{{"tags", 0, tags, "t1"}, {"tags", 1, tags, "t2"}}, []string{"tags"}},
		{"mixed list with junk", `{"tags":["t1",null,7,{"name":"no id"},{"$id":"t3"}]}`, []Link{{"tags", 0, tags, "t1"}, {"tags", 4, tags, "t3"}}, []string{"tags"}},
		{"empty list", `{"tags":[]}`, nil, []string{"tags"}},
		{"columns left out", `{"title":"x"}`, nil, nil},
	}
	for _, c := range cases {
		links, present, err := posts.Links(key, []byte(c.row))
		require.NoError(t, err, c.name)
		require.Equal(t, c.links, links, c.name)
		require.Equal(t, c.present, present, c.name)
	}
}

// Nested objects from the ledger's join resolve like Appwrite's nested rows: a to-one chain
// and a to-many list.
func TestJoinedRowsProject(t *testing.T) {
	t.Parallel()
	m := mustMapping(t, relMapping)
	key := connector.TableKey{Database: "main", Table: "posts"}
	posts := m.Lookup(key)
	r := mustRow(t, `{"$id":"p1","title":"T","author":{"$id":"a1","name":"Ann","company":{"$id":"c1","name":"Acme"}},"tags":[{"$id":"t1","name":"go"},null,{"$id":"t2","name":"db"}]}`)
	doc, err := posts.MeiliDocument(r, key, func(s string) string { return s })
	require.NoError(t, err)
	require.Equal(t, "Ann", doc["author_name"])
	require.Equal(t, []any{"go", "db"}, doc["tag_names"])
	vals, err := posts.PostgresValues(r)
	require.NoError(t, err)
	require.Contains(t, vals, "Acme")
}
