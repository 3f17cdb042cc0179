package meilisink

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector"
)

// The sink answers its own batch size (Options.BatchSize) and the fingerprint of each
// table's meilisearch section; a table without one has none.
func TestBatchSizeAndFingerprint(t *testing.T) {
	t.Parallel()
	m := parseMapping(t, `
- database: main
  table: posts
  meilisearch: {index: posts}
- database: main
  table: rows
  postgres: {columns: {title: text}}
`)
	s, err := New(Options{URL: "http://127.0.0.1:1", Mapping: m, BatchSize: 42, Log: quietLog()})
	require.NoError(t, err)
	defer s.Close()
	require.Equal(t, 42, s.BatchSize())
	posts := connector.TableKey{Database: "main", Table: "posts"}
	require.NotEmpty(t, s.Fingerprint(posts))
	require.Equal(t, m.Lookup(posts).Meili.Fingerprint, s.Fingerprint(posts))
	require.Empty(t, s.Fingerprint(connector.TableKey{Database: "main", Table: "rows"}))
}
