package ledger

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/connector/sink"
)

// fpSink is a sink whose fingerprints a test changes between runs.
type fpSink struct {
	*fakeSink
	fp map[string]string
}

func (f fpSink) Fingerprint(k connector.TableKey) string { return f.fp[k.String()] }

// ReprojectChanged asks each sink for the fingerprint of every table it handles (in the
// ledger or mapped) and queues the rows of the tables whose fingerprint changed: the decision
// serve.go made by sink name before.
func TestReprojectChangedAsksTheSinkForFingerprints(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	admin := NewAdmin(b.pool)
	require.NoError(t, b.rec.Record(ctx, ch("p1", t0, connector.OpUpsert, "v")))
	s := fpSink{fakeSink: newFakeSink(t), fp: map[string]string{"main/posts": "a", "main/ignored": "x", "main/new": "n"}}
	mapped := []connector.TableKey{{Database: "main", Table: "posts"}, {Database: "main", Table: "new"}, {Database: "*", Table: "any"}}
	require.NoError(t, admin.ReprojectChanged(ctx, []sink.Sink{s}, mapped, b.m, nil))
	var tables []string
	rows, err := b.pool.Query(ctx, `SELECT table_key || '=' || fingerprint FROM appwrite_sync.sink_tables WHERE sink = 's' ORDER BY 1`)
	require.NoError(t, err)
	for rows.Next() {
		var v string
		require.NoError(t, rows.Scan(&v))
		tables = append(tables, v)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{"main/new=n", "main/posts=a"}, tables, "tables the sink does not handle and wildcard keys are not registered")

	s.fp["main/posts"] = "b"
	require.NoError(t, admin.ReprojectChanged(ctx, []sink.Sink{s}, mapped, b.m, nil))
	due, err := b.q.ReadRetries(ctx, "s", 10)
	require.NoError(t, err)
	require.Equal(t, []string{"p1"}, rowIDs(due))
}
