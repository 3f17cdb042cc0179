package mapping

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/internal/yamlnode"
)

// problems parses src as mapping.yaml and validates the tables together, returning every
// error message (parse errors and cross-table errors).
func problems(t *testing.T, src string) string {
	t.Helper()
	tables, err := parseFile("mapping.yaml", []byte(strings.TrimLeft(src, "\n")), testEnv)
	var msgs []string
	if err != nil {
		var ce connector.ConfigErrors
		require.True(t, errors.As(err, &ce), "parse errors are ConfigErrors: %T", err)
		msgs = append(msgs, err.Error())
	}
	if _, err := New(tables, ""); err != nil {
		var ce connector.ConfigErrors
		require.True(t, errors.As(err, &ce), "New errors are ConfigErrors: %T", err)
		msgs = append(msgs, err.Error())
	}
	return strings.Join(msgs, "\n")
}

// Each case lists messages that must appear, each starting with "mapping.yaml:<line>: <path>".
func TestValidationErrors(t *testing.T) {
	cases := []struct {
		name string
		src  string
		want []string
	}{
		{"unknown key with suggestion", `
tables:
  - database: main
    table: posts
    meilisearh: {}
`, []string{`mapping.yaml:4: tables[0].meilisearh: unknown key "meilisearh"; did you mean "meilisearch"?`}},

		{"missing database and table", `
tables:
  - meilisearch: {}
`, []string{`mapping.yaml:2: tables[0].database: missing database`, `mapping.yaml:2: tables[0].table: missing table`}},

		{"bad ids", `
tables:
  - database: "main db"
    table: "*"
    meilisearch: {index: x}
`, []string{`mapping.yaml:2: tables[0].database: "main db" is not an Appwrite database id`,
			`mapping.yaml:3: tables[0].table: "*" is not an Appwrite table id; "*" is only allowed for database`}},

		{"tables not a list", `
tables:
  database: main
`, []string{`mapping.yaml:2: tables: must be a list of tables`}},

		{"where errors", `
tables:
  - database: main
    table: posts
    where:
      status: [a, b]
      kind: {is: x}
      "a..b": 1
      flag: {not: [true]}
      cat: {in: []}
    meilisearch: {}
`, []string{
			`mapping.yaml:5: tables[0].where.status: a list is not a condition; to match any of several values write ` + "`status: {in: [a, b]}`",
			`mapping.yaml:6: tables[0].where.kind.is: unknown key "is"`,
			`mapping.yaml:7: tables[0].where.a..b: invalid path "a..b"`,
			`mapping.yaml:8: tables[0].where.flag.not: must be a single value`,
			`mapping.yaml:9: tables[0].where.cat.in: empty list`}},

		{"permissions errors", `
tables:
  - database: main
    table: posts
    permissions: {fields: roles}
    meilisearch: {}
  - database: main
    table: pages
    permissions: {field: "$roles"}
    meilisearch: {}
`, []string{
			`mapping.yaml:4: tables[0].permissions.fields: unknown key "fields"; did you mean "field"?`,
			`mapping.yaml:4: tables[0].permissions.field: missing field`,
			`mapping.yaml:8: tables[1].permissions.field: invalid field name "$roles"`}},

		{"index uid", `
tables:
  - database: main
    table: posts
    meilisearch:
      index: "posts/v2"
  - database: main
    table: blog.posts
    meilisearch: {}
`, []string{
			`mapping.yaml:5: tables[0].meilisearch.index: "posts/v2" is not a valid index uid; use 1 to 400 letters, digits, - and _`,
			`mapping.yaml:8: tables[1].meilisearch: the index uid defaults to the table id "blog.posts", which is not a valid index uid; set meilisearch.index`}},

		{"primary key", `
tables:
  - database: main
    table: posts
    meilisearch:
      primary_key: "$id"
`, []string{`mapping.yaml:5: tables[0].meilisearch.primary_key: "$id" is not a valid primary key field`}},

		{"fields errors", `
tables:
  - database: main
    table: posts
    meilisearch:
      fields:
        - title
        - {a: x, b: y}
        - {author: {form: author.name}}
        - id
        - "$id"
        - title
        - {x: "a..b"}
        - [nested]
      exclude: [secret]
`, []string{
			`mapping.yaml:7: tables[0].meilisearch.fields[1]: not a field`,
			`mapping.yaml:8: tables[0].meilisearch.fields[2].author.form: unknown key "form"; did you mean "from"?`,
			`mapping.yaml:8: tables[0].meilisearch.fields[2].author.from: missing from`,
			`mapping.yaml:9: tables[0].meilisearch.fields[3]: field "id" is reserved: it is the primary key field`,
			`mapping.yaml:10: tables[0].meilisearch.fields[4]: field "$id" is reserved`,
			`mapping.yaml:11: tables[0].meilisearch.fields[5]: field "title" is already selected at tables[0].meilisearch.fields[0]`,
			`mapping.yaml:12: tables[0].meilisearch.fields[6].x: invalid source path "a..b"`,
			`mapping.yaml:13: tables[0].meilisearch.fields[7]: not a field`,
			`mapping.yaml:14: tables[0].meilisearch.exclude: exclude only applies to the default field selection`}},

		{"settings name unknown fields", `
tables:
  - database: main
    table: posts
    permissions: {field: read_roles}
    meilisearch:
      fields: [title, author, {views: stats.views}]
      searchable: [title, titel, author.name]
      filterable: [read_roles, "$id", views, views]
      sortable: ["$createdAt"]
      displayed: ["*"]
      ranking_rules: [words, tpyo, "views:desc", "missing:asc", "sort:up"]
      synonyms: {phone: []}
`, []string{
			`mapping.yaml:7: tables[0].meilisearch.searchable[1]: "titel" is not a field of the documents; did you mean "title"?`,
			`mapping.yaml:8: tables[0].meilisearch.filterable[3]: "views" is listed twice`,
			`mapping.yaml:9: tables[0].meilisearch.sortable[0]: "$createdAt" is not a field of the documents`,
			`mapping.yaml:11: tables[0].meilisearch.ranking_rules[1]: unknown ranking rule "tpyo"; did you mean "typo"?`,
			`mapping.yaml:11: tables[0].meilisearch.ranking_rules[3]: "missing" is not a field of the documents`,
			`mapping.yaml:11: tables[0].meilisearch.ranking_rules[4]: unknown ranking rule "sort:up"`,
			`mapping.yaml:12: tables[0].meilisearch.synonyms.phone: no synonyms listed`}},

		{"settings with the default selection", `
tables:
  - database: main
    table: posts
    meilisearch:
      exclude: [secret]
      searchable: [title, secret, secret.part]
      sortable: ["$createdAt", "$id"]
`, []string{
			`mapping.yaml:6: tables[0].meilisearch.searchable[1]: "secret" is excluded from the documents`,
			`mapping.yaml:6: tables[0].meilisearch.searchable[2]: "secret.part" is excluded from the documents`,
			`mapping.yaml:7: tables[0].meilisearch.sortable[0]: "$createdAt" is not in the documents: the default field selection leaves out $ attributes; list the fields explicitly, including "$createdAt"`}},

		{"postgres types", `
tables:
  - database: main
    table: posts
    postgres:
      columns:
        title: text
        views: bigin
        score: float8
        at: timestamp
        meta: {from: meta}
        body: {from: body, type: txt, size: 3}
        list: [text]
`, []string{
			`mapping.yaml:7: tables[0].postgres.columns.views: unknown type "bigin" (did you mean bigint?); supported types: text, bigint`,
			`mapping.yaml:8: tables[0].postgres.columns.score: unknown type "float8" (write double precision)`,
			`mapping.yaml:9: tables[0].postgres.columns.at: unknown type "timestamp" (write timestamptz)`,
			`mapping.yaml:10: tables[0].postgres.columns.meta.type: missing type`,
			`mapping.yaml:11: tables[0].postgres.columns.body.size: unknown key "size"`,
			`mapping.yaml:11: tables[0].postgres.columns.body.type: unknown type "txt" (did you mean text?)`,
			`mapping.yaml:12: tables[0].postgres.columns.list: must be a type or {from: path, type: ...}`}},

		{"postgres names", `
tables:
  - database: main
    table: posts
    permissions: {field: title}
    postgres:
      table: "posts-v2"
      columns:
        id: text
        Updated_At: timestamptz
        "1st": text
        title: text
        from_path: {from: "a.", type: text}
      delete: sfot
  - database: main
    table: blog.posts
    postgres:
      columns: {}
`, []string{
			`mapping.yaml:6: tables[0].postgres.table: "posts-v2" is not a valid Postgres table name`,
			`mapping.yaml:8: tables[0].postgres.columns.id: column "id" is a system column of every warehouse table; rename it, e.g. {app_id: {from: id, type: ...}}`,
			`mapping.yaml:9: tables[0].postgres.columns.Updated_At: column "Updated_At" is a system column`,
			`mapping.yaml:10: tables[0].postgres.columns.1st: "1st" is not a valid column name`,
			`mapping.yaml:12: tables[0].postgres.columns.from_path: invalid source path "a."`,
			`mapping.yaml:13: tables[0].postgres.delete: unknown delete mode "sfot"; did you mean soft?`,
			`mapping.yaml:5: tables[0].postgres: column "title" clashes with the permissions column`,
			`mapping.yaml:16: tables[1].postgres: the warehouse table defaults to the table id "blog.posts", which is not a valid Postgres table name; set postgres.table`,
			`mapping.yaml:17: tables[1].postgres.columns: no columns`}},

		{"postgres indexes", `
tables:
  - database: main
    table: posts
    postgres:
      columns:
        title: text
        tags: "text[]"
      indexes:
        - columns: [titel]
        - {columns: [tags], using: gin, unique: true}
        - {columns: [title], name: "bad name"}
        - {name: x}
        - {columns: [deleted_at], using: hash2}
        - {columns: [title, title]}
`, []string{
			`mapping.yaml:9: tables[0].postgres.indexes[0].columns[0]: no column "titel" in this table; did you mean "title"?`,
			`mapping.yaml:10: tables[0].postgres.indexes[1]: a gin index cannot be unique`,
			`mapping.yaml:11: tables[0].postgres.indexes[2].name: "bad name" is not a valid index name`,
			`mapping.yaml:12: tables[0].postgres.indexes[3].columns: an index needs columns`,
			`mapping.yaml:13: tables[0].postgres.indexes[4].columns[0]: no column "deleted_at" in this table`,
			`mapping.yaml:13: tables[0].postgres.indexes[4].using: unknown index method "hash2"`,
			`mapping.yaml:14: tables[0].postgres.indexes[5].columns[1]: column "title" is listed twice`}},

		{"postgres section without columns", `
tables:
  - database: main
    table: posts
    postgres:
`, []string{`mapping.yaml:4: tables[0].postgres: the postgres section has no columns`}},

		{"duplicate table entries", `
tables:
  - database: main
    table: posts
    meilisearch: {index: a}
  - database: main
    table: posts
    meilisearch: {index: b}
  - database: "*"
    table: posts
    meilisearch: {index: c}
`, []string{`mapping.yaml:5: tables[1]: table main/posts is mapped twice (first at mapping.yaml:2); merge the two entries into one`}},

		{"index shared without shared_index", `
tables:
  - database: main
    table: posts
    meilisearch: {index: content}
  - database: main
    table: pages
    meilisearch:
      index: content
      shared_index: true
`, []string{
			`mapping.yaml:4: tables[0].meilisearch.index: index "content" is also used by main/pages (mapping.yaml:5); set shared_index: true on every table`}},

		{"default index collision", `
tables:
  - database: main
    table: posts
    meilisearch: {}
  - database: "*"
    table: posts
    meilisearch: {}
`, []string{
			`mapping.yaml:4: tables[0].meilisearch: index "posts" is also used by */posts (mapping.yaml:5)`,
			`mapping.yaml:7: tables[1].meilisearch: index "posts" is also used by main/posts (mapping.yaml:2)`}},

		{"shared index disagreements", `
tables:
  - database: main
    table: posts
    meilisearch: {index: content, shared_index: true, fields: [title], searchable: [title]}
  - database: main
    table: pages
    meilisearch: {index: content, shared_index: true, primary_key: pk, fields: [title]}
`, []string{
			`mapping.yaml:7: tables[1].meilisearch.index: shared index "content": primary_key "pk" differs from "id" declared by main/posts (mapping.yaml:2)`,
			`mapping.yaml:7: tables[1].meilisearch.index: shared index "content": settings differ from those declared by main/posts (mapping.yaml:2)`}},

		{"two tables, one warehouse table", `
tables:
  - database: main
    table: posts
    postgres:
      columns: {title: text}
  - database: main
    table: articles
    postgres:
      table: posts
      columns: {title: text}
`, []string{
			`mapping.yaml:9: tables[1].postgres.table: warehouse table "appwrite"."posts" is also written by main/posts (mapping.yaml:2); give each Appwrite table its own postgres.table`}},

		{"relation name clashes", `
tables:
  - database: main
    table: posts
    postgres:
      columns: {title: text}
      indexes:
        - {name: pages, columns: [title]}
  - database: main
    table: pages
    postgres:
      columns: {title: text}
      indexes:
        - {name: posts_updated_at_idx, columns: [title]}
`, []string{
			`mapping.yaml:10: tables[1].postgres: table "pages" clashes with index of main/posts (mapping.yaml:2) in schema "appwrite"`,
			`mapping.yaml:13: tables[1].postgres.indexes[0].name: index "posts_updated_at_idx" clashes with index of main/posts (mapping.yaml:2)`}},

		{"environment variable unset", `
tables:
  - database: main
    table: posts
    meilisearch: {index: "${NOT_SET}"}
`, []string{`mapping.yaml:4: tables[0].meilisearch.index: environment variable NOT_SET is not set`}},

		{"yaml syntax", `
tables:
  - database: main
   table: posts
`, []string{`mapping.yaml:3: not valid YAML: `}},

		{"no tables key", `
table:
  - database: main
`, []string{`mapping.yaml:1: table: unknown key "table"; did you mean "tables"?`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := problems(t, tc.src)
			for _, w := range tc.want {
				require.Contains(t, got, w)
			}
		})
	}
}

func TestValidMappingHasNoErrors(t *testing.T) {
	require.Empty(t, problems(t, `
tables:
  - database: main
    table: posts
    permissions: {field: read_roles}
    meilisearch:
      fields: [title, {author_name: author.name}, author]
      searchable: [title, author.name, author_name]
      filterable: [read_roles]
      ranking_rules: [words, "title:asc"]
    postgres:
      columns: {title: text}
      delete: soft
      indexes: [{columns: [deleted_at]}, {columns: [read_roles], using: gin}]
  - database: "*"
    table: posts
    meilisearch: {index: all_posts}
`))
}

func TestBadSchema(t *testing.T) {
	_, err := New(nil, "bad schema")
	require.ErrorContains(t, err, `warehouse.schema: not a valid Postgres schema name (got "bad schema")`)
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	_, err := LoadFile(filepath.Join(dir, "missing.yaml"), testEnv)
	require.ErrorContains(t, err, "cannot read mapping file")

	empty := filepath.Join(dir, "empty.yaml")
	require.NoError(t, os.WriteFile(empty, nil, 0o600))
	_, err = LoadFile(empty, testEnv)
	require.ErrorContains(t, err, "empty.yaml: the mapping file is empty")

	other := filepath.Join(dir, "other.yaml")
	require.NoError(t, os.WriteFile(other, []byte("{}\n"), 0o600))
	_, err = LoadFile(other, testEnv)
	require.ErrorContains(t, err, "other.yaml:1: no `tables:` key")

	tables, err := LoadFile(filepath.Join("testdata", "basic", "mapping.yaml"), testEnv)
	require.NoError(t, err)
	require.Len(t, tables, 1)
	require.Equal(t, "posts_v2", tables[0].Meili.Index, "env expanded")
	require.Equal(t, filepath.Join("testdata", "basic", "mapping.yaml"), tables[0].File)
	require.Equal(t, 2, tables[0].Line)
	require.Equal(t, "tables[0]", tables[0].Path)
}

// ParseTables works on the `tables:` node of any document: here the main config file, whose
// other keys belong to the config loader.
func TestParseTablesFromConfigNode(t *testing.T) {
	src := "listen: \":8080\"\nstate: {database_url: x}\ntables:\n  - database: main\n    table: posts\n    meilisearch: {index: \"${POSTS_INDEX}\"}\n  - database: main\n    table: pages\n    postgres: {columns: {title: txt}}\n"
	var root yaml.Node
	require.NoError(t, yaml.Unmarshal([]byte(src), &root))
	d := yamlnode.NewNode("config.yaml", &root, testEnv)
	var tables []*Table
	for _, f := range d.Fields(root.Content[0], "") {
		if f.Key == "tables" {
			tables = ParseTables(d, f.Value, f.Path)
		}
	}
	require.Len(t, tables, 1, "only the entry without problems")
	require.Equal(t, "posts_v2", tables[0].Meili.Index)
	require.Equal(t, "config.yaml", tables[0].File)
	require.Len(t, d.Errs, 1)
	require.Equal(t, `config.yaml:9: tables[1].postgres.columns.title: unknown type "txt" (did you mean text?); `+typesFix, d.Errs[0].Error())
}

// The example in the package documentation must stay a valid mapping.
func TestDocExample(t *testing.T) {
	src, err := os.ReadFile("doc.go")
	require.NoError(t, err)
	var yamlLines []string
	in := false
	for _, line := range strings.Split(string(src), "\n") {
		switch {
		case strings.HasPrefix(line, "//\ttables:"):
			in = true
		case in && !strings.HasPrefix(line, "//\t"):
			in = false
		}
		if in {
			yamlLines = append(yamlLines, strings.TrimPrefix(line, "//\t"))
		}
	}
	require.NotEmpty(t, yamlLines)
	require.Empty(t, problems(t, strings.Join(yamlLines, "\n")))
}
