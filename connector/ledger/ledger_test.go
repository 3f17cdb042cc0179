package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/connector/metrics"
	"github.com/appwrite-sync/appwrite-sync/internal/pgtest"
	"github.com/appwrite-sync/appwrite-sync/migrations"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

type bundle struct {
	pool *pgxpool.Pool
	rec  *Recorder
	q    *Queue
	m    *metrics.Metrics
}

func setup(t *testing.T) bundle { return setupB(t) }

func setupB(t testing.TB) bundle {
	t.Helper()
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	_, err := migrations.Up(ctx, url)
	require.NoError(t, err)
	pool, err := OpenPool(ctx, url, 8)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	m := metrics.New()
	rec := NewRecorder(pool, RecorderOptions{Routes: func(connector.TableKey) []string { return []string{"s"} }, Metrics: m})
	t.Cleanup(rec.Close)
	return bundle{pool: pool, rec: rec, q: NewQueue(pool), m: m}
}

var key = connector.TableKey{Database: "main", Table: "posts"}
var t0 = time.Date(2026, 3, 26, 10, 0, 0, 0, time.UTC)

func ch(id string, at time.Time, op connector.Op, title string) connector.Change {
	row, _ := json.Marshal(map[string]any{"$id": id, "$updatedAt": at.Format(time.RFC3339Nano), "title": title, "$tableId": "posts"})
	return connector.Change{Key: key, RowID: id, Op: op, UpdatedAt: at, Action: "update", Row: row}
}

func TestVersionGuardResults(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	rec := func(c connector.Change) Result {
		r, err := b.rec.RecordResult(ctx, c)
		require.NoError(t, err)
		return r
	}
	require.Equal(t, Recorded, rec(ch("a", t0, connector.OpUpsert, "v1")))
	require.Equal(t, Duplicate, rec(ch("a", t0, connector.OpUpsert, "v1")))
	require.Equal(t, Recorded, rec(ch("a", t0.Add(time.Millisecond), connector.OpUpsert, "v2")))
	require.Equal(t, Stale, rec(ch("a", t0, connector.OpUpsert, "v1")))
	// Same instant, different content: deterministic winner by content hash, counted as a tie.
	x, y := ch("tie", t0, connector.OpUpsert, "x"), ch("tie", t0, connector.OpUpsert, "y")
	hx, _ := connector.ContentHash(x.Row)
	hy, _ := connector.ContentHash(y.Row)
	winner, loser := x, y
	if string(hy) > string(hx) {
		winner, loser = y, x
	}
	require.Equal(t, Recorded, rec(loser))
	require.Equal(t, Recorded, rec(winner))
	require.Equal(t, Stale, rec(loser), "the loser of a tie must lose in either order")
	// The same version arriving with other routing keys ($collectionId instead of $tableId) is a duplicate.
	alt := winner
	var m map[string]any
	require.NoError(t, json.Unmarshal(alt.Row, &m))
	delete(m, "$tableId")
	m["$collectionId"] = "posts"
	alt.Row, _ = json.Marshal(m)
	require.Equal(t, Duplicate, rec(alt))
	// A delete at the same instant wins over the upsert; a late older update never resurrects.
	require.Equal(t, Recorded, rec(ch("a", t0.Add(time.Millisecond), connector.OpDelete, "v2")))
	require.Equal(t, Stale, rec(ch("a", t0.Add(time.Millisecond), connector.OpUpsert, "v2")))
	require.Equal(t, Stale, rec(ch("a", t0, connector.OpUpsert, "v0")))
	var op int16
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT op FROM appwrite_sync.ledger WHERE row_id = 'a'`).Scan(&op))
	require.Equal(t, int16(connector.OpDelete), op)
}

func TestGroupCommitBatchKeepsNewestPerRow(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	res, err := b.rec.RecordBatch(ctx, []connector.Change{
		ch("g", t0.Add(2*time.Millisecond), connector.OpUpsert, "new"),
		ch("g", t0, connector.OpUpsert, "old"),
		ch("g", t0.Add(2*time.Millisecond), connector.OpUpsert, "new"),
		ch("h", t0, connector.OpUpsert, "h"),
	})
	require.NoError(t, err)
	require.Equal(t, []Result{Recorded, Stale, Duplicate, Recorded}, res)
	var title string
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT row->>'title' FROM appwrite_sync.ledger WHERE row_id = 'g'`).Scan(&title))
	require.Equal(t, "new", title)
}

func TestClaimLeaseNewerVersionAndExpiry(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		require.NoError(t, b.rec.Record(ctx, ch(fmt.Sprint("r", i), t0, connector.OpUpsert, "v1")))
	}
	c1, err := b.q.Claim(ctx, "s", 3, time.Minute)
	require.NoError(t, err)
	require.Len(t, c1.Items, 3)
	// Claimed rows are not claimable again while leased: a row is never in two in-flight batches.
	c2, err := b.q.Claim(ctx, "s", 10, time.Minute)
	require.NoError(t, err)
	require.Len(t, c2.Items, 2)
	c3, err := b.q.Claim(ctx, "s", 10, time.Minute)
	require.NoError(t, err)
	require.Empty(t, c3.Items)

	// A newer version of a claimed row arrives in flight: completing the old one keeps it pending.
	inflight := c1.Items[0]
	require.NoError(t, b.rec.Record(ctx, ch(inflight.RowID, t0.Add(time.Second), connector.OpUpsert, "v2")))
	outs := make([]Outcome, len(c1.Items))
	for i, it := range c1.Items {
		outs[i] = Outcome{Item: it}
	}
	require.NoError(t, b.q.Complete(ctx, c1, outs))
	c4, err := b.q.Claim(ctx, "s", 10, time.Minute)
	require.NoError(t, err)
	require.Len(t, c4.Items, 1)
	require.Equal(t, inflight.RowID, c4.Items[0].RowID)
	require.Greater(t, c4.Items[0].Seq, inflight.Seq)
	require.Contains(t, string(c4.Items[0].Row), "v2")

	// c2's lease lapses (its worker died): the rows come back; the dead worker's late
	// completion changes nothing.
	_, err = b.pool.Exec(ctx, `UPDATE appwrite_sync.pending SET available_at = now() - interval '1s' WHERE lease_owner = $1`, c2.Token)
	require.NoError(t, err)
	c5, err := b.q.Claim(ctx, "s", 10, time.Minute)
	require.NoError(t, err)
	require.Len(t, c5.Items, 2)
	stale := make([]Outcome, len(c2.Items))
	for i, it := range c2.Items {
		stale[i] = Outcome{Item: it}
	}
	require.NoError(t, b.q.Complete(ctx, c2, stale))
	var n int
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM appwrite_sync.pending WHERE lease_owner = $1`, c5.Token).Scan(&n))
	require.Equal(t, 2, n, "a lapsed claim must not settle rows another worker holds")
}

func TestDeadLetterRetryAndSweep(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	admin := NewAdmin(b.pool)
	require.NoError(t, b.rec.Record(ctx, ch("d", t0, connector.OpUpsert, "v1")))
	require.NoError(t, b.rec.Record(ctx, ch("r", t0, connector.OpUpsert, "v1")))
	c, err := b.q.Claim(ctx, "s", 10, time.Minute)
	require.NoError(t, err)
	outs := []Outcome{}
	for _, it := range c.Items {
		if it.RowID == "d" {
			outs = append(outs, Outcome{Item: it, Err: connector.Permanent("bad value", nil)})
		} else {
			outs = append(outs, Outcome{Item: it, Err: fmt.Errorf("timeout"), Backoff: time.Hour})
		}
	}
	require.NoError(t, b.q.Complete(ctx, c, outs))
	ds, err := admin.DeadLetters(ctx, "s", "", 10)
	require.NoError(t, err)
	require.Len(t, ds, 1)
	require.Equal(t, "d", ds[0].RowID)
	require.Equal(t, "bad value", ds[0].Reason)
	empty, err := b.q.Claim(ctx, "s", 10, time.Minute)
	require.NoError(t, err)
	require.Empty(t, empty.Items, "dead letters and backed-off rows are not claimable")
	n, err := admin.ReplayDeadLetters(ctx, "s", "", "")
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
	again, err := b.q.Claim(ctx, "s", 10, time.Minute)
	require.NoError(t, err)
	require.Len(t, again.Items, 1)

	// Tombstones older than the retention and not pending anywhere are swept.
	require.NoError(t, b.rec.Record(ctx, ch("gone", t0, connector.OpDelete, "x")))
	_, err = b.pool.Exec(ctx, `DELETE FROM appwrite_sync.pending WHERE row_id = 'gone'; UPDATE appwrite_sync.ledger SET recorded_at = now() - interval '31 days' WHERE row_id = 'gone'`)
	require.NoError(t, err)
	swept, err := admin.SweepTombstones(ctx, 30*24*time.Hour)
	require.NoError(t, err)
	require.Equal(t, int64(1), swept)
}

func TestReprojectQueuesLiveRowsOnFingerprintChange(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	admin := NewAdmin(b.pool)
	require.NoError(t, b.rec.Record(ctx, ch("p1", t0, connector.OpUpsert, "v")))
	require.NoError(t, b.rec.Record(ctx, ch("p2", t0, connector.OpDelete, "v")))
	_, err := b.pool.Exec(ctx, `DELETE FROM appwrite_sync.pending`)
	require.NoError(t, err)
	n, err := admin.Reproject(ctx, "s", map[string]string{"main/posts": "fp1"})
	require.NoError(t, err)
	require.Equal(t, int64(1), n["main/posts"], "first sight of a table queues its live rows")
	_, _ = b.pool.Exec(ctx, `DELETE FROM appwrite_sync.pending`)
	n, err = admin.Reproject(ctx, "s", map[string]string{"main/posts": "fp1"})
	require.NoError(t, err)
	require.Zero(t, n["main/posts"], "unchanged fingerprint queues nothing")
	n, err = admin.Reproject(ctx, "s", map[string]string{"main/posts": "fp2"})
	require.NoError(t, err)
	require.Equal(t, int64(1), n["main/posts"])
}

func TestStateStoreDownIsUnavailable(t *testing.T) {
	ctx := context.Background()
	pool, err := OpenPool(ctx, "postgres://x@127.0.0.1:1/none?sslmode=disable", 2)
	require.NoError(t, err)
	defer pool.Close()
	rec := NewRecorder(pool, RecorderOptions{})
	defer rec.Close()
	err = rec.Record(ctx, ch("a", t0, connector.OpUpsert, "v"))
	require.ErrorIs(t, err, ErrUnavailable)
	require.Error(t, Ready(ctx, pool))
}
