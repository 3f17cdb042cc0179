package backfill

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/mapping"
)

// A declared relationship is not selected (its ids are enough; values come from the
// ledger); a nested path through an undeclared column still is.
func TestRelationSelectSkipsDeclaredRelationships(t *testing.T) {
	t.Parallel()
	f := filepath.Join(t.TempDir(), "mapping.yaml")
	require.NoError(t, os.WriteFile(f, []byte(`
tables:
  - {database: main, table: authors}
  - database: main
    table: posts
    relationships: {author: authors}
    postgres: {columns: {author_name: {from: author.name, type: text}, editor: {from: editor.name, type: text}}}
  - database: main
    table: joined
    relationships: {author: authors}
    postgres: {columns: {author_name: {from: author.name, type: text}}}
`), 0o600))
	tables, err := mapping.LoadFile(f, func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	m, err := mapping.New(tables, "")
	require.NoError(t, err)
	require.Equal(t, []string{"*", "editor.*"}, relationSelect(m.Lookup(connector.TableKey{Database: "main", Table: "posts"})))
	require.Nil(t, relationSelect(m.Lookup(connector.TableKey{Database: "main", Table: "joined"})))
}
