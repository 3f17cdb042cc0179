package ledger

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector"
)

// read is ch as a backfill or reconcile records it: the row read from the REST API.
func read(id string, at time.Time, title string) connector.Change {
	c := ch(id, at, connector.OpUpsert, title)
	c.Action, c.Authoritative = "backfill", true
	return c
}

// tiePair returns two titles whose rows for id at t0 hash in the order asked: the first's
// content hash below the second's when lowFirst, above it otherwise.
func tiePair(t *testing.T, id string, lowFirst bool) (string, string) {
	t.Helper()
	a, b := "left", "right"
	ha, err := connector.ContentHash(ch(id, t0, connector.OpUpsert, a).Row)
	require.NoError(t, err)
	hb, err := connector.ContentHash(ch(id, t0, connector.OpUpsert, b).Row)
	require.NoError(t, err)
	if (bytes.Compare(ha, hb) < 0) != lowFirst {
		a, b = b, a
	}
	return a, b
}

// held is the version the ledger holds for id: its title, whether it is authoritative, its seq.
func held(t *testing.T, b bundle, id string) (title string, authoritative bool, seq int64) {
	t.Helper()
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT `+SourceSQL+`::json->>'title', authoritative, seq
        FROM appwrite_sync.ledger l WHERE table_key = $1 AND row_id = $2`, key.String(), id).Scan(&title, &authoritative, &seq))
	return title, authoritative, seq
}

// A row read from the REST API is what Appwrite holds at its $updatedAt: it wins a tie against
// a webhook's other content there, whichever content hashes higher, and a late webhook with
// that content does not displace it. Run for both hash orders, so it cannot pass by luck.
func TestAPIReadWinsTiesAtItsUpdatedAt(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	rec := func(c connector.Change) Result {
		t.Helper()
		r, err := b.rec.RecordResult(ctx, c)
		require.NoError(t, err)
		return r
	}
	for _, lowFirst := range []bool{true, false} {
		name := map[bool]string{true: "read hashes higher", false: "read hashes lower"}[lowFirst]
		t.Run(name, func(t *testing.T) {
			// Webhook A, then the read B at the same $updatedAt.
			id := "after-" + name
			hook, truth := tiePair(t, id, lowFirst)
			require.Equal(t, Recorded, rec(ch(id, t0, connector.OpUpsert, hook)))
			_, _, hookSeq := held(t, b, id)
			require.Equal(t, Recorded, rec(read(id, t0, truth)), "the read wins the tie")
			title, auth, seq := held(t, b, id)
			require.Equal(t, truth, title)
			require.True(t, auth)
			require.Greater(t, seq, hookSeq, "a new version for the sinks")
			require.Equal(t, Stale, rec(ch(id, t0, connector.OpUpsert, hook)), "the late webhook does not displace the read")
			require.Equal(t, Duplicate, rec(read(id, t0, truth)), "reading the same row again changes nothing")
			require.Equal(t, Duplicate, rec(ch(id, t0, connector.OpUpsert, truth)), "nor does its own webhook")
			title, _, seq2 := held(t, b, id)
			require.Equal(t, truth, title)
			require.Equal(t, seq, seq2)
			// A later read of other content at the same $updatedAt is the newer truth.
			require.Equal(t, Recorded, rec(read(id, t0, hook)))
			title, _, _ = held(t, b, id)
			require.Equal(t, hook, title)
			// A delete at the same instant still orders after every upsert.
			require.Equal(t, Recorded, rec(ch(id, t0, connector.OpDelete, hook)))

			// The read B first, then a late webhook A at the same $updatedAt.
			id = "before-" + name
			hook, truth = tiePair(t, id, lowFirst)
			require.Equal(t, Recorded, rec(read(id, t0, truth)))
			require.Equal(t, Stale, rec(ch(id, t0, connector.OpUpsert, hook)))
			title, _, _ = held(t, b, id)
			require.Equal(t, truth, title)
			// A newer $updatedAt from a webhook wins as always.
			require.Equal(t, Recorded, rec(ch(id, t0.Add(time.Millisecond), connector.OpUpsert, hook)))
			title, auth, _ = held(t, b, id)
			require.Equal(t, hook, title)
			require.False(t, auth)
		})
	}
}

// A read of the content a webhook recorded confirms it: it becomes authoritative in place
// (no new version for the sinks), and a webhook of other content at that $updatedAt, hashing
// higher or lower, no longer displaces it. In one group, the read decides too.
func TestAPIReadConfirmsTheHeldVersion(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	for _, lowFirst := range []bool{true, false} {
		id := map[bool]string{true: "confirm-low", false: "confirm-high"}[lowFirst]
		truth, other := tiePair(t, id, lowFirst)
		require.NoError(t, b.rec.Record(ctx, ch(id, t0, connector.OpUpsert, truth)))
		_, _, seq := held(t, b, id)
		res, err := b.rec.RecordBatch(ctx, []connector.Change{read(id, t0, truth)})
		require.NoError(t, err)
		require.Equal(t, []Result{Duplicate}, res)
		title, auth, seq2 := held(t, b, id)
		require.Equal(t, truth, title)
		require.True(t, auth, "the read marks the version authoritative")
		require.Equal(t, seq, seq2, "in place: the sinks have this version already")
		r, err := b.rec.RecordResult(ctx, ch(id, t0, connector.OpUpsert, other))
		require.NoError(t, err)
		require.Equal(t, Stale, r)
		title, _, _ = held(t, b, id)
		require.Equal(t, truth, title)

		// One group holding a webhook and a read of the same row at the same $updatedAt.
		gid := "group-" + id
		hook, fresh := tiePair(t, gid, lowFirst)
		res, err = b.rec.RecordBatch(ctx, []connector.Change{ch(gid, t0, connector.OpUpsert, hook), read(gid, t0, fresh)})
		require.NoError(t, err)
		require.Equal(t, []Result{Stale, Recorded}, res)
		title, auth, _ = held(t, b, gid)
		require.Equal(t, fresh, title)
		require.True(t, auth)
	}
}

// sweepUntilGone sweeps id's tombstone past a retention of 0 as the hourly sweep does, at
// most two sweeps apart: the first raises the horizon over it, the next removes it.
func sweepUntilGone(t *testing.T, b bundle, id string) {
	t.Helper()
	ctx := context.Background()
	admin := NewAdmin(b.pool)
	for i := 0; i < 2; i++ {
		if i > 0 {
			nextSweep(t, b)
		}
		_, err := admin.SweepTombstones(ctx, 0)
		require.NoError(t, err)
		var n int
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM appwrite_sync.ledger WHERE row_id = $1`, id).Scan(&n))
		if n == 0 {
			return
		}
	}
	t.Fatalf("the tombstone of %s was not swept", id)
}

// A captured upsert replayed after its row's tombstone was swept does not resurrect the row;
// a re-create after the delete, a new row and a read from the REST API still go through.
func TestReplayAfterTheTombstoneIsSwept(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	rec := func(c connector.Change) Result {
		t.Helper()
		r, err := b.rec.RecordResult(ctx, c)
		require.NoError(t, err)
		return r
	}
	v1, v2, v3 := t0, t0.Add(time.Second), t0.Add(2*time.Second)
	require.Equal(t, Recorded, rec(ch("x", v1, connector.OpUpsert, "v1")))
	require.Equal(t, Recorded, rec(ch("x", v2, connector.OpDelete, "v1")))
	// Delivered: the sink's cursor is past the tombstone.
	_, _, _, err := b.q.Acquire(ctx, "s", "A", time.Minute)
	require.NoError(t, err)
	es := readN(t, b.q, Pos{}, 1)
	_, err = b.q.Settle(ctx, "s", "A", time.Minute, applied(es), &es[len(es)-1].Pos)
	require.NoError(t, err)
	sweepUntilGone(t, b, "x")

	require.Equal(t, Stale, rec(ch("x", v1, connector.OpUpsert, "v1")), "the replay is refused")
	res, err := b.rec.RecordBatch(ctx, []connector.Change{ch("x", v1, connector.OpUpsert, "v1")})
	require.NoError(t, err)
	require.Equal(t, []Result{Stale}, res, "in a batch too")
	var refused dto.Metric
	require.NoError(t, b.m.BelowHorizon.WithLabelValues(key.String()).Write(&refused))
	require.Equal(t, 2.0, refused.GetCounter().GetValue())
	var n int
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM appwrite_sync.ledger WHERE row_id = 'x'`).Scan(&n))
	require.Zero(t, n)

	// Other rows of the table: a row the ledger never held, at or before the horizon, comes
	// only from the REST API; a new one by webhook as always.
	require.Equal(t, Stale, rec(ch("old", v1, connector.OpUpsert, "o")))
	require.Equal(t, Recorded, rec(read("old", v1, "o")))
	require.Equal(t, Recorded, rec(ch("new", v3, connector.OpUpsert, "n")))
	// Another table has its own horizon.
	other := ch("x", v1, connector.OpUpsert, "v1")
	other.Key = connector.TableKey{Database: "main", Table: "other"}
	require.Equal(t, Recorded, rec(other))

	// The row re-created after its delete goes through.
	require.Equal(t, Recorded, rec(ch("x", v3, connector.OpUpsert, "v3")))
	title, _, _ := held(t, b, "x")
	require.Equal(t, "v3", title)
	tail := readN(t, b.q, es[len(es)-1].Pos, 4)
	require.ElementsMatch(t, []string{"old", "new", "x", "x"}, rowIDs(tail))
}

// With row history, the horizon refuses the same replays for the history as for the ledger:
// a webhook replay of a deleted, swept row keeps no version; another table's row with the same
// id and time does, and so does a read from the REST API.
func TestHistoryKeepsNoVersionTheHorizonRefuses(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	hrec := NewRecorder(b.logPool, RecorderOptions{History: func(connector.TableKey) (HistoryPolicy, bool) { return HistoryPolicy{}, true }})
	t.Cleanup(hrec.Close)
	rec := func(c connector.Change) Result {
		t.Helper()
		r, err := hrec.RecordResult(ctx, c)
		require.NoError(t, err)
		return r
	}
	versions := func(table, id string) int {
		t.Helper()
		var n int
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM appwrite_sync.history WHERE table_key = $1 AND row_id = $2`, table, id).Scan(&n))
		return n
	}
	v1, v2 := t0, t0.Add(time.Second)
	require.Equal(t, Recorded, rec(ch("x", v1, connector.OpUpsert, "v1")))
	require.Equal(t, Recorded, rec(ch("x", v2, connector.OpDelete, "v1")))
	_, _, _, err := b.q.Acquire(ctx, "s", "A", time.Minute)
	require.NoError(t, err)
	es := readN(t, b.q, Pos{}, 1)
	_, err = b.q.Settle(ctx, "s", "A", time.Minute, applied(es), &es[len(es)-1].Pos)
	require.NoError(t, err)
	sweepUntilGone(t, b, "x")
	require.Equal(t, 2, versions(key.String(), "x"))

	// A replay of a version the history holds would write nothing anyway: this one differs in
	// content, so only the horizon keeps it out.
	require.Equal(t, Stale, rec(ch("x", v1, connector.OpUpsert, "replayed")))
	require.Equal(t, 2, versions(key.String(), "x"), "the refused replay kept no version")
	other := ch("x", v1, connector.OpUpsert, "v1")
	other.Key = connector.TableKey{Database: "main", Table: "other"}
	require.Equal(t, Recorded, rec(other))
	require.Equal(t, 1, versions("main/other", "x"), "another table has its own horizon")
	require.Equal(t, Recorded, rec(read("old", v1, "o")))
	require.Equal(t, 1, versions(key.String(), "old"), "a read from the REST API passes the horizon")
}

// The horizon follows the newest swept tombstone, never moves back, and never covers a
// tombstone whose $updatedAt is not past the retention yet (set in the future by hand): that
// one stays.
func TestHorizonOnlyRises(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	admin := NewAdmin(b.pool)
	_, _, _, err := b.q.Acquire(ctx, "s", "A", time.Minute)
	require.NoError(t, err)
	future := time.Now().Add(time.Hour).UTC().Truncate(time.Millisecond)
	for _, c := range []connector.Change{ch("a", t0.Add(time.Hour), connector.OpDelete, "a"), ch("b", t0, connector.OpDelete, "b"),
		ch("f", future, connector.OpDelete, "f")} {
		require.NoError(t, b.rec.Record(ctx, c))
	}
	es := readN(t, b.q, Pos{}, 3)
	_, err = b.q.Settle(ctx, "s", "A", time.Minute, applied(es), &es[len(es)-1].Pos)
	require.NoError(t, err)
	horizon := func() time.Time {
		var h time.Time
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT updated_at FROM appwrite_sync.ledger_horizon WHERE table_key = $1`, key.String()).Scan(&h))
		return h
	}
	n, err := admin.SweepTombstones(ctx, 0)
	require.NoError(t, err)
	require.Zero(t, n, "the first sweep only raises the horizon")
	require.True(t, horizon().Equal(t0.Add(time.Hour)), "%v", horizon())
	nextSweep(t, b)
	n, err = admin.SweepTombstones(ctx, 0)
	require.NoError(t, err)
	require.Equal(t, int64(2), n)
	var left []string
	rows, err := b.pool.Query(ctx, `SELECT row_id FROM appwrite_sync.ledger ORDER BY row_id`)
	require.NoError(t, err)
	left, err = pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Equal(t, []string{"f"}, left, "a tombstone dated in the future stays")
	// A later sweep over an older tombstone does not lower it.
	require.NoError(t, b.rec.Record(ctx, ch("c", t0.Add(-time.Hour), connector.OpDelete, "c")))
	es = readN(t, b.q, es[len(es)-1].Pos, 1)
	_, err = b.q.Settle(ctx, "s", "A", time.Minute, applied(es), &es[len(es)-1].Pos)
	require.NoError(t, err)
	n, err = admin.SweepTombstones(ctx, 0)
	require.NoError(t, err)
	require.Equal(t, int64(1), n, "covered by the horizon in force already")
	require.True(t, horizon().Equal(t0.Add(time.Hour)))
}

// A read of the version the ledger already holds as read (a repeated backfill of unchanged
// rows) leaves the row untouched, not even locked, which would write WAL and dirty its page,
// once the table's previous group of reads held duplicates: the first page of a repeated
// backfill locks its rows, the next ones do not. A read that confirms a webhook's version
// still marks it in place.
func TestRereadOfTheHeldReadLeavesTheRowUntouched(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	page := []connector.Change{read("same-1", t0, "a"), read("same-2", t0, "b")}
	res, err := b.rec.RecordBatch(ctx, page)
	require.NoError(t, err)
	require.Equal(t, []Result{Recorded, Recorded}, res)
	require.NoError(t, b.rec.Record(ctx, ch("hooked", t0, connector.OpUpsert, "c")))
	xmax := func(id string) string {
		var x string
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT xmax::text FROM appwrite_sync.ledger WHERE table_key = $1 AND row_id = $2`, key.String(), id).Scan(&x))
		return x
	}
	res, err = b.rec.RecordBatch(ctx, page) // the first page of a repeated backfill
	require.NoError(t, err)
	require.Equal(t, []Result{Duplicate, Duplicate}, res)
	locked1, locked2 := xmax("same-1"), xmax("same-2")
	res, err = b.rec.RecordBatch(ctx, append(page, read("hooked", t0, "c")))
	require.NoError(t, err)
	require.Equal(t, []Result{Duplicate, Duplicate, Duplicate}, res)
	require.Equal(t, locked1, xmax("same-1"), "neither locked nor updated again")
	require.Equal(t, locked2, xmax("same-2"))
	_, auth, _ := held(t, b, "hooked")
	require.True(t, auth, "the read confirmed the webhook's version")

	// A group of reads without duplicates (a first backfill's page) turns the probe off.
	res, err = b.rec.RecordBatch(ctx, []connector.Change{read("new-1", t0, "d")})
	require.NoError(t, err)
	require.Equal(t, []Result{Recorded}, res)
	res, err = b.rec.RecordBatch(ctx, page)
	require.NoError(t, err)
	require.Equal(t, []Result{Duplicate, Duplicate}, res)
	require.NotEqual(t, locked1, xmax("same-1"), "not probed: locked by this group")
}

// A group of webhook upserts newer than every tombstone horizon, nearly every group, reads
// ledger_horizon once, not once per change (the per-row probe cost about 1 µs of Postgres CPU
// per change). Upserts at or before a horizon still probe their own table's:
// TestReplayAfterTheTombstoneIsSwept holds what that refuses.
func TestRecordReadsTheHorizonOncePerGroup(t *testing.T) {
	t.Parallel()
	t.Run("ledger", func(t *testing.T) { t.Parallel(); testHorizonReads(t, nil, 1) })
	// With row history, the group's history insert applies the same horizon: once more.
	t.Run("history", func(t *testing.T) {
		t.Parallel()
		testHorizonReads(t, func(connector.TableKey) (HistoryPolicy, bool) { return HistoryPolicy{}, true }, 2)
	})
}

// testHorizonReads records groups over three tables with a recorder keeping the row history
// of the tables history selects (nil: none), and checks that ledger_horizon was read at most
// perGroup times a group.
func testHorizonReads(t *testing.T, history func(connector.TableKey) (HistoryPolicy, bool), perGroup int64) {
	b := setup(t)
	ctx := context.Background()
	var version int
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT current_setting('server_version_num')::int`).Scan(&version))
	if version < 150000 {
		t.Skip("needs pg_stat_force_next_flush (PostgreSQL 15+) to read the scan counters at once")
	}
	// The recorder on one connection, with serve's generic plans (OpenLogPool), so its
	// counters are flushed by the statement below.
	cfg := b.logPool.Config().Copy()
	cfg.MaxConns, cfg.MinConns = 1, 0
	one, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	defer one.Close()
	rec := NewRecorder(one, RecorderOptions{History: history})
	defer rec.Close()
	// Two tables with horizons in the past, one without: the group spans all three.
	_, err = b.pool.Exec(ctx, `INSERT INTO appwrite_sync.ledger_horizon (table_key, updated_at) VALUES ('main/posts', $1), ('main/a', $2)`,
		t0.Add(-48*time.Hour), t0.Add(-24*time.Hour))
	require.NoError(t, err)
	scans := func() int64 {
		_, err := one.Exec(ctx, `SELECT pg_stat_force_next_flush()`)
		require.NoError(t, err)
		var n int64
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT seq_scan + COALESCE(idx_scan, 0) FROM pg_stat_user_tables
            WHERE relid = 'appwrite_sync.ledger_horizon'::regclass`).Scan(&n))
		return n
	}
	const groups, size = 8, 30 // past the five runs after which Postgres may keep a generic plan
	before := scans()
	for g := range groups {
		chs := make([]connector.Change, size)
		for i := range chs {
			chs[i] = ch(fmt.Sprintf("g%d-%d", g, i), t0.Add(time.Duration(i)*time.Millisecond), connector.OpUpsert, "v")
			chs[i].Key = []connector.TableKey{key, {Database: "main", Table: "a"}, {Database: "main", Table: "b"}}[i%3]
		}
		res, err := rec.RecordBatch(ctx, chs)
		require.NoError(t, err)
		for _, r := range res {
			require.Equal(t, Recorded, r)
		}
	}
	require.LessOrEqual(t, scans()-before, perGroup*groups, "ledger_horizon read per change, not per group")
}
