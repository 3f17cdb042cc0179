package pgsink

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/mapping"
)

// The sink answers its own batch size and each table's fingerprint: serve.go no longer picks
// them by sink name.
func TestBatchSizeAndFingerprint(t *testing.T) {
	t.Parallel()
	tables, err := mapping.LoadFile(filepath.Join("..", "..", "..", "mapping", "testdata", "types_ok", "mapping.yaml"), func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	m, err := mapping.New(tables, "wh")
	require.NoError(t, err)
	require.Equal(t, BatchSizeDefault, New(nil, m, nil).BatchSize())
	s := NewWithOptions(nil, m, Options{BatchSize: 250})
	require.Equal(t, 250, s.BatchSize())
	posts := connector.TableKey{Database: "main", Table: "posts"}
	require.NotEmpty(t, s.Fingerprint(posts))
	require.Equal(t, m.Lookup(posts).PG.Fingerprint, s.Fingerprint(posts))
	require.Empty(t, s.Fingerprint(connector.TableKey{Database: "main", Table: "unmapped"}))
}
