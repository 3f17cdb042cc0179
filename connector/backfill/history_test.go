package backfill_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector/backfill"
)

// Versions a job reads carry their source into the row history: backfill for a job a person
// started, reconcile for a scheduled one (its delete of a row gone from the source too), and
// never an event or an actor.
func TestJobsRecordTheirSourceInTheHistory(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{history: true})
	t0 := b.api.Now()
	b.put("r1", "one", t0)
	b.put("r2", "two", t0)
	require.Equal(t, backfill.StateSucceeded, b.wait(b.start("main/posts", "full"), 20*time.Second).State)

	b.put("r1", "one again", t0.Add(time.Minute))
	require.True(t, b.api.Delete(posts, "r2"))
	id, err := b.m.Enqueue(context.Background(), posts, backfill.ModeFull, backfill.TriggerSchedule)
	require.NoError(t, err)
	require.Equal(t, backfill.StateSucceeded, b.wait(id, 20*time.Second).State)

	rows, err := b.pool.Query(context.Background(), `SELECT row_id, op, source, event IS NULL AND actor IS NULL
        FROM appwrite_sync.history ORDER BY row_id, updated_at, op`)
	require.NoError(t, err)
	type version struct {
		id       string
		op       int16
		source   string
		noEvents bool
	}
	var got []version
	for rows.Next() {
		var v version
		require.NoError(t, rows.Scan(&v.id, &v.op, &v.source, &v.noEvents))
		got = append(got, v)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []version{
		{"r1", 1, "backfill", true}, {"r1", 1, "reconcile", true},
		{"r2", 1, "backfill", true}, {"r2", 2, "reconcile", true},
	}, got)
}
