package backfill_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/connector/appwrite"
	"github.com/appwrite-sync/appwrite-sync/connector/backfill"
	"github.com/appwrite-sync/appwrite-sync/connector/ledger"
	"github.com/appwrite-sync/appwrite-sync/internal/appwritetest"
)

func TestFullBackfillRecordsEveryRowAndReportsProgress(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.api.Seed(posts, 2500, 300)

	id := b.start("main/posts", "full")
	j := b.wait(id, 30*time.Second)
	require.Equal(t, backfill.StateSucceeded, j.State, j.Error)
	require.EqualValues(t, 2500, j.RowsRead)
	require.EqualValues(t, 2500, j.RowsChanged)
	require.Zero(t, j.RowsDeleted)
	require.NotNil(t, j.Total, "Appwrite counted 2500 rows exactly (below its 5000 cap)")
	require.EqualValues(t, 2500, *j.Total)
	require.Greater(t, j.RatePerS, 0.0)
	require.Equal(t, "done", j.Phase)
	require.Equal(t, "2500", j.Checkpoint)
	require.Equal(t, backfill.ModeFull, j.Mode)
	require.Equal(t, backfill.TriggerAdmin, j.Trigger)

	live := b.live(posts)
	require.Len(t, live, 2500)
	require.Equal(t, "Row 17", live["seed-17"])
	for _, r := range b.ledger(posts) {
		require.Equal(t, backfill.ActionBackfill, r.Action)
	}
	require.EqualValues(t, 2500, counter(b.metrics.BackfillRows.WithLabelValues("main/posts", "read")))
	require.Eventually(t, func() bool {
		return counter(b.metrics.BackfillJobs.WithLabelValues("full", "succeeded")) == 1
	}, 5*time.Second, 5*time.Millisecond)

	// Paging: keyset on $sequence, total counted on the first page only.
	reqs := b.listRequests(posts)
	require.Len(t, reqs, 26, "25 pages of 100 and the empty page that ends the scan")
	require.Equal(t, "", reqs[0].Total, "the first page asks for the total")
	require.Equal(t, "false", reqs[1].Total)
	require.Equal(t, "100", afterSequence(reqs[1]))
	require.Contains(t, reqs[0].Queries, `{"method":"select","values":["*","author.*"]}`,
		"the mapping reads author.name: the relationship must be selected")

	// Again: every row is a duplicate now.
	j = b.wait(b.start("main/posts", "full"), 30*time.Second)
	require.Equal(t, backfill.StateSucceeded, j.State)
	require.EqualValues(t, 2500, j.RowsRead)
	require.Zero(t, j.RowsChanged)
	require.Zero(t, j.RowsDeleted)

	// The list shows both, newest first.
	code, out := b.call(http.MethodGet, "/admin/backfill", "")
	require.Equal(t, http.StatusOK, code)
	require.Len(t, out["jobs"], 2)
}

func TestFullBackfillLeavesNewerWebhookVersionsAlone(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	t0 := b.api.Now()
	for i := range 300 {
		b.put(fmt.Sprintf("r%d", i), "source", t0)
	}
	// Webhooks already recorded a newer version of r1 and an older one of r2.
	ctx := context.Background()
	rec := func(id, title string, at time.Time) {
		row := fmt.Sprintf(`{"$id":%q,"$sequence":"1","$updatedAt":%q,"title":%q}`, id, appwrite.FormatTime(at), title)
		require.NoError(t, b.rec.Record(ctx, connector.Change{Key: posts, RowID: id, Op: connector.OpUpsert, UpdatedAt: at,
			Action: "update", Row: []byte(row)}))
	}
	rec("r1", "newer webhook", t0.Add(time.Second))
	rec("r2", "older webhook", t0.Add(-time.Second))

	j := b.wait(b.start("main/posts", "full"), 30*time.Second)
	require.Equal(t, backfill.StateSucceeded, j.State, j.Error)
	require.EqualValues(t, 299, j.RowsChanged, "r1's newer version stays")
	live := b.live(posts)
	require.Equal(t, "newer webhook", live["r1"])
	require.Equal(t, "source", live["r2"])
	require.Len(t, live, 300)
}

func TestFullReconcileDeletesRowsGoneFromSourceOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var b *bundle
	var late atomic.Bool
	b = setup(t, setupOpts{proxy: func(r *http.Request, n int64) {
		// A row a webhook records during the second scan that the scan cannot see (created
		// and deleted in the source meanwhile): recorded after the scan began, so it is not
		// this job's to delete.
		if late.Load() && n == 5 {
			at := b.api.Now()
			row := fmt.Sprintf(`{"$id":"late","$sequence":"9999","$updatedAt":%q,"title":"late"}`, appwrite.FormatTime(at))
			require.NoError(t, b.rec.Record(ctx, connector.Change{Key: posts, RowID: "late", Op: connector.OpUpsert, UpdatedAt: at,
				Action: "create", Row: []byte(row)}))
		}
	}})
	t0 := b.api.Now()
	b.synced(500, t0)

	// Lost webhooks: 50 rows deleted in the source.
	for i := 0; i < 500; i += 10 {
		require.True(t, b.api.Delete(posts, fmt.Sprintf("r%03d", i)))
	}
	late.Store(true)
	b.resetProxyCount()
	j := b.wait(b.start("main/posts", "full"), 30*time.Second)
	require.Equal(t, backfill.StateSucceeded, j.State, j.Error)
	require.EqualValues(t, 450, j.RowsRead)
	require.Zero(t, j.RowsChanged)
	require.EqualValues(t, 50, j.RowsDeleted)

	l := b.ledger(posts)
	for i := range 500 {
		id := fmt.Sprintf("r%03d", i)
		if i%10 == 0 {
			require.Equal(t, connector.OpDelete, l[id].Op, id)
			require.True(t, l[id].UpdatedAt.Equal(t0), "a delete keeps the row's stored version")
			require.Equal(t, "v1", l[id].Title, "a delete keeps the row as it was")
		} else {
			require.Equal(t, connector.OpUpsert, l[id].Op, id)
		}
	}
	require.Equal(t, connector.OpUpsert, l["late"].Op, "a row recorded after the scan began is never deleted by it")
	require.EqualValues(t, 50, counter(b.metrics.BackfillRows.WithLabelValues("main/posts", "deleted")))

	var n int
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM appwrite_sync.backfill_seen`).Scan(&n))
	require.Zero(t, n, "seen ids are dropped when the job ends")
}

// A full job that would delete more than half of a table (a key that cannot see the rows
// reads few or none, and the rest look gone) fails and deletes nothing, with a reason that
// says what to check; started with allow_mass_delete, the same job deletes them.
func TestFullJobRefusesToDeleteMostOfATable(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	t0 := b.api.Now()
	b.synced(100, t0)
	for i := range 60 {
		require.True(t, b.api.Delete(posts, fmt.Sprintf("r%03d", i)))
	}

	j := b.wait(b.start("main/posts", "full"), 30*time.Second)
	require.Equal(t, backfill.StateFailed, j.State)
	require.Equal(t, 1, j.Failures, "refusing is final: retrying cannot change the answer")
	require.Contains(t, j.Error, "refusing to delete 60 of the 100 rows of main/posts: the full scan read 40 rows")
	require.Contains(t, j.Error, `{"table": "main/posts", "mode": "full", "allow_mass_delete": true}`)
	require.Zero(t, j.RowsDeleted)
	for id, r := range b.ledger(posts) {
		require.Equal(t, connector.OpUpsert, r.Op, "row %s was deleted by a refused job", id)
	}

	code, out := b.call(http.MethodPost, "/admin/backfill", `{"table":"main/posts","mode":"full","allow_mass_delete":true}`)
	require.Equal(t, http.StatusAccepted, code, out)
	j = b.wait(out["id"].(string), 30*time.Second)
	require.Equal(t, backfill.StateSucceeded, j.State, j.Error)
	require.True(t, j.AllowMassDelete)
	require.EqualValues(t, 60, j.RowsDeleted)
	deleted := 0
	for _, r := range b.ledger(posts) {
		if r.Op == connector.OpDelete {
			deleted++
		}
	}
	require.Equal(t, 60, deleted)
}

// A scan that reads nothing at all (the key sees no row) on a table of any size above the
// floor is refused as well; on a table of a few rows it may delete them all.
func TestMassDeleteRule(t *testing.T) {
	for _, c := range []struct {
		unseen, live int64
		refused      bool
	}{{0, 0, false}, {10, 10, false}, {11, 11, true}, {11, 22, false}, {12, 22, true}, {1000, 1000000, false}, {500001, 1000000, true}} {
		require.Equal(t, c.refused, backfill.MassDelete(c.unseen, c.live), "%d of %d", c.unseen, c.live)
	}
}

func TestIncrementalRepairsRowsUpdatedWhileWebhooksWereLost(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	t0 := b.api.Now()
	b.synced(400, t0)

	// Lost webhooks: 20 rows updated an hour later.
	t1 := t0.Add(time.Hour)
	for i := 0; i < 400; i += 20 {
		b.put(fmt.Sprintf("r%03d", i), "v2", t1)
	}
	j := b.wait(b.start("main/posts", "incremental"), 30*time.Second)
	require.Equal(t, backfill.StateSucceeded, j.State, j.Error)
	require.NotNil(t, j.Since)
	require.True(t, j.Since.Equal(t0.Add(-5*time.Minute)), "since = watermark (the full scan's newest row) - 5m skew, got %s", j.Since)
	require.EqualValues(t, 20, j.RowsChanged)
	require.Equal(t, b.source(posts), b.live(posts))
	reqs := b.listRequests(posts)
	require.Contains(t, reqs[len(reqs)-1].Queries, fmt.Sprintf(`{"method":"greaterThanEqual","attribute":"$updatedAt","values":[%q]}`, appwrite.FormatTime(*j.Since)))

	// The watermark moved to t1: the next incremental reads only rows at or after t1 - 5m.
	t2 := t1.Add(time.Hour)
	b.put("r001", "v3", t2)
	j = b.wait(b.start("main/posts", "incremental"), 30*time.Second)
	require.Equal(t, backfill.StateSucceeded, j.State, j.Error)
	require.EqualValues(t, 21, j.RowsRead, "the 20 rows of t1 (inside the skew window) and r001")
	require.EqualValues(t, 1, j.RowsChanged)
	require.Equal(t, "v3", b.live(posts)["r001"])
}

func TestWatermarkNeverPassesTheScanStart(t *testing.T) {
	t.Parallel()
	// Appwrite's clock ahead of the state store's: rows carry $updatedAt in our future. A row
	// updated during the scan behind the keyset must still be inside the next window.
	b := setup(t, setupOpts{api: appwritetest.Options{Start: time.Now().Add(time.Hour)}})
	for i := range 50 {
		b.put(fmt.Sprintf("r%02d", i), "v1", b.api.Now())
	}
	before := time.Now()
	j := b.wait(b.start("main/posts", "incremental"), 30*time.Second)
	require.Equal(t, backfill.StateSucceeded, j.State, j.Error)
	require.Nil(t, j.Since, "no watermark yet: every row")
	var wm time.Time
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT updated_at FROM appwrite_sync.backfill_watermarks WHERE table_key = 'main/posts'`).Scan(&wm))
	require.True(t, wm.Before(before.Add(time.Minute)), "watermark %s is clamped to the scan start, not the rows' future $updatedAt", wm)
}

// A row read from the REST API is what Appwrite holds at its $updatedAt: a backfill replaces a
// webhook's other content recorded at the same $updatedAt, whichever content hashes higher,
// and the webhook arriving again afterwards does not displace it.
func TestBackfillWinsTiesAgainstWebhooks(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	t0 := b.api.Now()
	ctx := context.Background()
	hook := func(id string) connector.Change {
		row := fmt.Sprintf(`{"$id":%q,"$sequence":"1","$updatedAt":%q,"title":"webhook"}`, id, appwrite.FormatTime(t0))
		return connector.Change{Key: posts, RowID: id, Op: connector.OpUpsert, UpdatedAt: t0, Action: "update", Row: []byte(row)}
	}
	var higher, lower int // rows whose read hashes above / below the webhook's
	for i := range 40 {
		id := fmt.Sprintf("r%02d", i)
		read, err := connector.ContentHash(b.put(id, "source", t0))
		require.NoError(t, err)
		h := hook(id)
		require.NoError(t, b.rec.Record(ctx, h))
		webhook, err := connector.ContentHash(h.Row)
		require.NoError(t, err)
		if bytes.Compare(read, webhook) > 0 {
			higher++
		} else {
			lower++
		}
	}
	require.NotZero(t, higher, "both hash orders must occur")
	require.NotZero(t, lower, "both hash orders must occur")

	j := b.wait(b.start("main/posts", "full"), 30*time.Second)
	require.Equal(t, backfill.StateSucceeded, j.State, j.Error)
	require.EqualValues(t, 40, j.RowsChanged)
	require.Equal(t, b.source(posts), b.live(posts))
	for i := range 40 {
		r, err := b.rec.RecordResult(ctx, hook(fmt.Sprintf("r%02d", i)))
		require.NoError(t, err)
		require.Equal(t, ledger.Stale, r, "a late webhook at the same $updatedAt")
	}
	require.Equal(t, b.source(posts), b.live(posts))
}

// backfill_seen is unlogged: a crash of the state store empties it. A full job whose seen ids
// were lost mid-scan scans again instead of recording the rows they named as deletes.
func TestFullJobScansAgainWhenTheSeenIdsWereLost(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var b *bundle
	var lose atomic.Bool
	var lost atomic.Int64
	b = setup(t, setupOpts{proxy: func(r *http.Request, n int64) {
		if !lose.Load() || n != 4 {
			return
		}
		// What a crash leaves: the ids stored so far are gone, the job's counters are not.
		require.Eventually(t, func() bool {
			var n int64
			return b.pool.QueryRow(ctx, `SELECT count(*) FROM appwrite_sync.backfill_seen`).Scan(&n) == nil && n >= 100
		}, 10*time.Second, 5*time.Millisecond)
		tag, err := b.pool.Exec(ctx, `DELETE FROM appwrite_sync.backfill_seen`)
		require.NoError(t, err)
		lost.Store(tag.RowsAffected())
	}})
	b.synced(500, b.api.Now())
	var persistence string
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT relpersistence::text FROM pg_class WHERE oid = 'appwrite_sync.backfill_seen'::regclass`).Scan(&persistence))
	require.Equal(t, "u", persistence, "unlogged: its writes cost no WAL")

	lose.Store(true)
	b.resetProxyCount()
	before := len(b.listRequests(posts))
	j := b.wait(b.start("main/posts", "full"), 30*time.Second)
	require.Positive(t, lost.Load(), "the ids were lost mid-scan")
	require.Equal(t, backfill.StateSucceeded, j.State, j.Error)
	require.Zero(t, j.RowsDeleted, "no row is gone from the source")
	require.Len(t, b.live(posts), 500)
	require.GreaterOrEqual(t, len(b.listRequests(posts))-before, 2*5, "the table was scanned again (5 pages each time)")
}
