package pgsink

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/connector/ledger"
	"github.com/appwrite-sync/appwrite-sync/connector/metrics"
	"github.com/appwrite-sync/appwrite-sync/connector/sink/sinktest"
	"github.com/appwrite-sync/appwrite-sync/internal/pgtest"
	"github.com/appwrite-sync/appwrite-sync/mapping"
	"github.com/appwrite-sync/appwrite-sync/migrations"
)

var histKey = connector.TableKey{Database: "main", Table: "posts"}

// histBundle is a state store and a warehouse (the same database, as by default) with row
// history on for main/posts.
type histBundle struct {
	pool    *pgxpool.Pool
	logPool *pgxpool.Pool
	m       *mapping.Mapping
	rec     *ledger.Recorder
	q       *ledger.Queue
	w       *History
	met     *metrics.Metrics
}

func historyMapping(t testing.TB, history string) *mapping.Mapping {
	t.Helper()
	src := `
- database: main
  table: posts
  postgres:
    columns: {title: text, views: bigint}
    history: ` + history + "\n"
	return sinktest.ParseMapping(t, "hist", src)
}

func setupHistory(t *testing.T, history string) histBundle {
	t.Helper()
	ctx := context.Background()
	url := pgtest.NewMigratedDatabase(t, migrations.Up)
	pool, err := ledger.OpenPool(ctx, url, 4)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	logPool, err := ledger.OpenLogPool(ctx, url, 4)
	require.NoError(t, err)
	t.Cleanup(logPool.Close)
	m := historyMapping(t, history)
	met := metrics.New()
	rec := ledger.NewRecorder(logPool, ledger.RecorderOptions{Metrics: met, History: func(k connector.TableKey) (ledger.HistoryPolicy, bool) {
		tb := m.Lookup(k)
		if tb == nil || tb.PG == nil || tb.PG.History == nil {
			return ledger.HistoryPolicy{}, false
		}
		return ledger.HistoryPolicy{Retention: tb.PG.History.Retention}, true
	}})
	t.Cleanup(rec.Close)
	w := NewHistory(pool, m, nil)
	require.NoError(t, w.Start(ctx))
	return histBundle{pool: pool, logPool: logPool, m: m, rec: rec, q: ledger.NewQueue(logPool), w: w, met: met}
}

var h0 = time.Date(2026, 3, 26, 10, 0, 0, 0, time.UTC)

// webhookChange is a webhook delivery of row id at $updatedAt at, by actor.
func webhookChange(id string, at time.Time, op connector.Op, title, actor string) connector.Change {
	action := "update"
	if op == connector.OpDelete {
		action = "delete"
	}
	row, _ := json.Marshal(map[string]any{"$id": id, "$updatedAt": at.Format("2006-01-02T15:04:05.000+00:00"), "$tableId": "posts",
		"$databaseId": "main", "title": title, "views": len(title)})
	return connector.Change{Key: histKey, RowID: id, Op: op, UpdatedAt: at, Action: action, Row: row, Actor: actor,
		Event: "databases.main.tables.posts.rows." + id + "." + action, Source: connector.SourceWebhook}
}

// deliverAll moves the history log to the warehouse as a delivery that never crashes would,
// from the settled cursor, until it wrote want versions, and returns how many the state
// store holds. The log shows a version only once every transaction older than it ended, in
// the whole cluster (other tests' too), so an empty read means "not yet", not "done".
func (b histBundle) deliverAll(t *testing.T, owner string, want int) int {
	t.Helper()
	ctx := context.Background()
	held, cur, _, err := b.q.AcquireHistory(ctx, Name, owner, time.Minute)
	require.NoError(t, err)
	require.True(t, held)
	n := 0
	deadline := time.Now().Add(10 * time.Second)
	for {
		vs, err := b.q.ReadHistory(ctx, cur, 3) // small batches: several settles
		require.NoError(t, err)
		if len(vs) == 0 {
			if n < want && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond) // a poll: no signal says when other transactions end
				continue
			}
			require.NoError(t, b.q.ResignHistory(ctx, Name, owner))
			var kept int
			require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM appwrite_sync.history`).Scan(&kept))
			require.Equal(t, n, kept, "delivered every version kept")
			return n
		}
		require.NoError(t, b.w.WriteHistory(ctx, vs))
		cur = vs[len(vs)-1].Pos
		_, err = b.q.SettleHistory(ctx, Name, owner, time.Minute, cur)
		require.NoError(t, err)
		n += len(vs)
	}
}

// readSome reads up to limit versions after pos, waiting until the log shows some (see
// deliverAll).
func (b histBundle) readSome(t *testing.T, pos ledger.Pos, limit int) []ledger.HistoryVersion {
	t.Helper()
	var vs []ledger.HistoryVersion
	require.Eventually(t, func() bool {
		var err error
		vs, err = b.q.ReadHistory(context.Background(), pos, limit)
		require.NoError(t, err)
		return len(vs) > 0
	}, 10*time.Second, 5*time.Millisecond)
	return vs
}

type histRowOut struct {
	ID, Op, Source, Title string
	UpdatedAt             time.Time
	Actor, Event          *string
	Changed               []string
	Version               int64
}

// warehouseHistory reads hist.posts_history_changes in version order.
func (b histBundle) warehouseHistory(t *testing.T) []histRowOut {
	t.Helper()
	rows, err := b.pool.Query(context.Background(), `SELECT id, op, source, COALESCE(data->>'title', ''), updated_at, actor, event,
        changed_columns, version_number FROM hist.posts_history_changes ORDER BY id, version_number`)
	require.NoError(t, err)
	defer rows.Close()
	var out []histRowOut
	for rows.Next() {
		var r histRowOut
		require.NoError(t, rows.Scan(&r.ID, &r.Op, &r.Source, &r.Title, &r.UpdatedAt, &r.Actor, &r.Event, &r.Changed, &r.Version))
		out = append(out, r)
	}
	require.NoError(t, rows.Err())
	return out
}

func ptr(s string) *string { return &s }

// Versions arriving out of order, with actors, a duplicate, a replay and a delete give exactly
// the distinct versions, in version order, each with its own actor, event and source; the
// view gives each version's changed columns against the previous one.
func TestHistoryKeepsEveryDistinctVersionOnce(t *testing.T) {
	t.Parallel()
	b := setupHistory(t, "true")
	ctx := context.Background()
	v1 := webhookChange("r1", h0, connector.OpUpsert, "first", "alice")
	v2 := webhookChange("r1", h0.Add(time.Minute), connector.OpUpsert, "second", "bob")
	v3 := webhookChange("r1", h0.Add(2*time.Minute), connector.OpUpsert, "second", "") // API-key write, views unchanged
	del := webhookChange("r1", h0.Add(3*time.Minute), connector.OpDelete, "second", "carol")
	replayed := v1
	replayed.Source, replayed.Actor = connector.SourceReplay, "mallory"

	want := []ledger.Result{ledger.Recorded, ledger.Stale, ledger.Duplicate, ledger.Recorded, ledger.Stale, ledger.Stale}
	for i, c := range []connector.Change{v2, v1, v2, del, v3, replayed} {
		res, err := b.rec.RecordResult(ctx, c)
		require.NoError(t, err)
		require.Equal(t, want[i], res, "change %d", i)
	}
	// The same versions again, in one group, change nothing.
	_, err := b.rec.RecordBatch(ctx, []connector.Change{del, v1, v3, v2, v1})
	require.NoError(t, err)
	require.Equal(t, 4, b.deliverAll(t, "a", 4))

	got := b.warehouseHistory(t)
	require.Equal(t, []histRowOut{
		{ID: "r1", Op: "upsert", Source: "webhook", Title: "first", UpdatedAt: h0, Actor: ptr("alice"),
			Event: ptr("databases.main.tables.posts.rows.r1.update"), Changed: []string{"title", "views"}, Version: 1},
		{ID: "r1", Op: "upsert", Source: "webhook", Title: "second", UpdatedAt: h0.Add(time.Minute), Actor: ptr("bob"),
			Event: ptr("databases.main.tables.posts.rows.r1.update"), Changed: []string{"title", "views"}, Version: 2},
		{ID: "r1", Op: "upsert", Source: "webhook", Title: "second", UpdatedAt: h0.Add(2 * time.Minute), Actor: nil,
			Event: ptr("databases.main.tables.posts.rows.r1.update"), Changed: []string{}, Version: 3},
		{ID: "r1", Op: "delete", Source: "webhook", Title: "second", UpdatedAt: h0.Add(3 * time.Minute), Actor: ptr("carol"),
			Event: ptr("databases.main.tables.posts.rows.r1.delete"), Changed: []string{}, Version: 4},
	}, normalize(got))
	var kept dto.Metric
	require.NoError(t, b.met.HistoryKept.WithLabelValues(histKey.String()).Write(&kept))
	require.Equal(t, 4.0, kept.GetCounter().GetValue())

	// The ledger itself still holds only the newest version: the delete.
	var op int16
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT op FROM appwrite_sync.ledger WHERE row_id = 'r1'`).Scan(&op))
	require.Equal(t, int16(2), op)
}

func normalize(rs []histRowOut) []histRowOut {
	for i := range rs {
		rs[i].UpdatedAt = rs[i].UpdatedAt.UTC()
		if rs[i].Changed == nil {
			rs[i].Changed = []string{}
		}
	}
	return rs
}

// A version read by a backfill has source backfill and no event or actor; a scheduled
// reconcile's, source reconcile; reading the held version again keeps nothing new.
func TestHistoryOfVersionsReadFromTheAPI(t *testing.T) {
	t.Parallel()
	b := setupHistory(t, "true")
	ctx := context.Background()
	read := func(id string, at time.Time, title, source string) connector.Change {
		c := webhookChange(id, at, connector.OpUpsert, title, "")
		c.Action, c.Event, c.Source, c.Authoritative = "backfill", "", source, true
		return c
	}
	_, err := b.rec.RecordBatch(ctx, []connector.Change{read("r1", h0, "one", connector.SourceBackfill), read("r2", h0, "two", connector.SourceReconcile)})
	require.NoError(t, err)
	_, err = b.rec.RecordBatch(ctx, []connector.Change{read("r1", h0, "one", connector.SourceReconcile)}) // the same version read again
	require.NoError(t, err)
	require.Equal(t, 2, b.deliverAll(t, "a", 2))
	got := normalize(b.warehouseHistory(t))
	require.Equal(t, []histRowOut{
		{ID: "r1", Op: "upsert", Source: "backfill", Title: "one", UpdatedAt: h0, Changed: []string{"title", "views"}, Version: 1},
		{ID: "r2", Op: "upsert", Source: "reconcile", Title: "two", UpdatedAt: h0, Changed: []string{"title", "views"}, Version: 1},
	}, got)
}

// Tables without history keep nothing: they pay nothing.
func TestHistoryOffKeepsNothing(t *testing.T) {
	t.Parallel()
	b := setupHistory(t, "false")
	ctx := context.Background()
	_, err := b.rec.RecordResult(ctx, webhookChange("r1", h0, connector.OpUpsert, "x", "alice"))
	require.NoError(t, err)
	var n int
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM appwrite_sync.history`).Scan(&n))
	require.Zero(t, n)
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = 'hist' AND tablename = 'posts_history'`).Scan(&n))
	require.Zero(t, n)
}

// A delivery killed after it wrote a batch but before its cursor moved, and a restarted
// delivery that writes it again: every acknowledged version is in the warehouse exactly once.
func TestHistoryRedeliveryAfterACrashKeepsItExact(t *testing.T) {
	t.Parallel()
	b := setupHistory(t, "true")
	ctx := context.Background()
	var acked []connector.Change
	for i := range 5 {
		for _, id := range []string{"a", "b", "c"} {
			c := webhookChange(id, h0.Add(time.Duration(i)*time.Second), connector.OpUpsert, fmt.Sprintf("%s%d", id, i), "u"+id)
			_, err := b.rec.RecordResult(ctx, c)
			require.NoError(t, err)
			acked = append(acked, c)
		}
	}
	// The first process: takes the lease for a short time, writes two batches, settles only
	// the first, and dies.
	held, cur, _, err := b.q.AcquireHistory(ctx, Name, "dead", 300*time.Millisecond)
	require.NoError(t, err)
	require.True(t, held)
	vs := b.readSome(t, cur, 4)
	require.NoError(t, b.w.WriteHistory(ctx, vs))
	_, err = b.q.SettleHistory(ctx, Name, "dead", 300*time.Millisecond, vs[len(vs)-1].Pos)
	require.NoError(t, err)
	vs = b.readSome(t, vs[len(vs)-1].Pos, 4)
	require.NoError(t, b.w.WriteHistory(ctx, vs)) // written, never settled

	// More versions are acknowledged while nobody delivers.
	late := webhookChange("a", h0.Add(-time.Hour), connector.OpUpsert, "a-late", "ua")
	_, err = b.rec.RecordResult(ctx, late)
	require.NoError(t, err)
	acked = append(acked, late)

	// The restarted process takes over once the dead lease lapses and delivers the rest.
	d := ledger.NewHistoryDelivery(b.q, b.w, ledger.HistoryDeliveryOptions{BatchSize: 5, Lease: time.Second, PollInterval: 10 * time.Millisecond})
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { d.Run(rctx); close(done) }()
	defer func() { cancel(); <-done }()
	require.Eventually(t, func() bool {
		var n int
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM hist.posts_history`).Scan(&n))
		var left int
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM appwrite_sync.history h, appwrite_sync.history_cursor c
            WHERE (h.tx, h.seq) > (c.tx, c.seq)`).Scan(&left))
		return n == len(acked) && left == 0
	}, 10*time.Second, 20*time.Millisecond)

	rows, err := b.pool.Query(ctx, `SELECT id, updated_at, actor, data->>'title' FROM hist.posts_history`)
	require.NoError(t, err)
	type version struct {
		id, actor, title string
		at               time.Time
	}
	var got []version
	for rows.Next() {
		var v version
		require.NoError(t, rows.Scan(&v.id, &v.at, &v.actor, &v.title))
		v.at = v.at.UTC()
		got = append(got, v)
	}
	require.NoError(t, rows.Err())
	want := make([]version, 0, len(acked))
	for _, c := range acked {
		var row struct{ Title string }
		require.NoError(t, json.Unmarshal(c.Row, &row))
		want = append(want, version{c.RowID, c.Actor, row.Title, c.UpdatedAt})
	}
	require.ElementsMatch(t, want, got)
}

// Retention removes, in batches, exactly the versions whose updated_at is past it, from the
// state store and from the warehouse; a version already past it when it arrives is not kept.
func TestHistoryRetentionRemovesOnlyWhatIsDue(t *testing.T) {
	t.Parallel()
	b := setupHistory(t, "true") // versions of any age are kept: old ones to remove
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	cutoff := now.Add(-24 * time.Hour)
	var old []connector.Change
	for i := range 1050 { // more than one batch of removal
		old = append(old, webhookChange(fmt.Sprintf("old%04d", i), cutoff.Add(-time.Duration(i+1)*time.Second), connector.OpUpsert, "old", ""))
	}
	_, err := b.rec.RecordBatch(ctx, old)
	require.NoError(t, err)
	keep := []connector.Change{
		webhookChange("old0000", now.Add(-time.Hour), connector.OpUpsert, "newer", ""), // a newer version of a row with old ones
		webhookChange("new", cutoff.Add(time.Second), connector.OpUpsert, "new", ""),
	}
	for _, c := range keep {
		_, err := b.rec.RecordResult(ctx, c)
		require.NoError(t, err)
	}
	require.Equal(t, 1052, b.deliverAll(t, "a", 1052))

	removed, err := ledger.NewAdmin(b.pool).SweepHistory(ctx, histKey, cutoff)
	require.NoError(t, err)
	require.EqualValues(t, 1050, removed)
	removed, err = b.w.Sweep(ctx, b.m.Lookup(histKey), cutoff)
	require.NoError(t, err)
	require.EqualValues(t, 1050, removed)
	for _, table := range []string{"appwrite_sync.history", "hist.posts_history"} {
		var n int
		var oldest time.Time
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*), min(updated_at) FROM `+table).Scan(&n, &oldest))
		require.Equal(t, 2, n, table)
		require.True(t, oldest.After(cutoff), table)
	}

	// With a retention, a version already older than it is not kept at all.
	r := setupHistory(t, "{retention: 24h}")
	require.Equal(t, 24*time.Hour, r.m.Lookup(histKey).PG.History.Retention)
	_, err = r.rec.RecordBatch(ctx, []connector.Change{old[0], webhookChange("fresh", time.Now().Add(-time.Hour), connector.OpUpsert, "fresh", "")})
	require.NoError(t, err)
	var n int
	require.NoError(t, r.pool.QueryRow(ctx, `SELECT count(*) FROM appwrite_sync.history`).Scan(&n))
	require.Equal(t, 1, n)
}

// An acting user the state store cannot hold as text (a client's header bytes) is kept cleaned:
// it never turns a valid change into a refused one.
func TestHistoryActorIsKeptCleaned(t *testing.T) {
	t.Parallel()
	b := setupHistory(t, "true")
	ctx := context.Background()
	res, err := b.rec.RecordResult(ctx, webhookChange("r1", h0, connector.OpUpsert, "x", "us\xffer\x00"))
	require.NoError(t, err)
	require.Equal(t, ledger.Recorded, res)
	var actor string
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT actor FROM appwrite_sync.history`).Scan(&actor))
	require.Equal(t, "us\uFFFDer", actor)
}

// A version whose values do not convert to their columns is kept with data NULL (the history
// never stops); one that does not match the table's `where` is not written.
func TestHistoryDataOfUnconvertibleAndFilteredVersions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupHistory(t, "true")
	m := sinktest.ParseMapping(t, "hist", `
- database: main
  table: posts
  where: {status: {not: draft}}
  postgres:
    columns: {title: text, views: bigint}
    history: true
`)
	w := NewHistory(b.pool, m, nil)
	version := func(id, row string) ledger.HistoryVersion {
		return ledger.HistoryVersion{Key: histKey, RowID: id, Version: connector.Version{UpdatedAt: h0, Op: connector.OpUpsert, Hash: []byte(id)},
			Source: connector.SourceWebhook, RecordedAt: h0, Row: []byte(row)}
	}
	require.NoError(t, w.WriteHistory(ctx, []ledger.HistoryVersion{
		version("good", `{"$id":"good","title":"t","views":3}`),
		version("bad", `{"$id":"bad","title":"t","views":"lots"}`),
		version("draft", `{"$id":"draft","title":"t","views":1,"status":"draft"}`),
	}))
	got := map[string]*string{}
	rows, err := b.pool.Query(ctx, `SELECT id, data::text FROM hist.posts_history`)
	require.NoError(t, err)
	for rows.Next() {
		var id string
		var data *string
		require.NoError(t, rows.Scan(&id, &data))
		got[id] = data
	}
	require.NoError(t, rows.Err())
	require.Equal(t, map[string]*string{"good": ptr(`{"title": "t", "views": 3}`), "bad": nil}, got)
}
