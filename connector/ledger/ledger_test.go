package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/connector/metrics"
	"github.com/appwrite-sync/appwrite-sync/internal/pgtest"
	"github.com/appwrite-sync/appwrite-sync/migrations"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

type bundle struct {
	pool    *pgxpool.Pool // general statements (OpenPool)
	logPool *pgxpool.Pool // the recorder's and the queue's (OpenLogPool)
	rec     *Recorder
	q       *Queue
	m       *metrics.Metrics
}

func setup(t *testing.T) bundle { return setupB(t) }

func setupB(t testing.TB) bundle {
	t.Helper()
	ctx := context.Background()
	url := pgtest.NewMigratedDatabase(t, migrations.Up)
	pool, err := OpenPool(ctx, url, 8)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	logPool, err := OpenLogPool(ctx, url, 8) // as serve wires them
	require.NoError(t, err)
	t.Cleanup(logPool.Close)
	m := metrics.New()
	rec := NewRecorder(logPool, RecorderOptions{Metrics: m})
	t.Cleanup(rec.Close)
	return bundle{pool: pool, logPool: logPool, rec: rec, q: NewQueue(logPool), m: m}
}

var key = connector.TableKey{Database: "main", Table: "posts"}
var t0 = time.Date(2026, 3, 26, 10, 0, 0, 0, time.UTC)

func ch(id string, at time.Time, op connector.Op, title string) connector.Change {
	row, _ := json.Marshal(map[string]any{"$id": id, "$updatedAt": at.Format(time.RFC3339Nano), "title": title, "$tableId": "posts"})
	return connector.Change{Key: key, RowID: id, Op: op, UpdatedAt: at, Action: "update", Row: row}
}

func TestVersionGuardResults(t *testing.T) {
	t.Parallel()
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
	ties := func() float64 {
		var m dto.Metric
		require.NoError(t, b.m.Ties.WithLabelValues(key.String()).Write(&m))
		return m.GetCounter().GetValue()
	}
	require.Equal(t, Recorded, rec(loser))
	require.Zero(t, ties(), "a first version is no tie")
	require.Equal(t, Recorded, rec(winner))
	require.Equal(t, 1.0, ties(), "the winner replacing the loser is a tie")
	require.Equal(t, Stale, rec(loser), "the loser of a tie must lose in either order")
	require.Equal(t, 2.0, ties(), "the loser arriving again is a tie too")
	require.Equal(t, Duplicate, rec(winner))
	require.Equal(t, 2.0, ties(), "a duplicate is no tie")
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
	require.Equal(t, 2.0, ties(), "versions differing in op are no tie")
	var op int16
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT op FROM appwrite_sync.ledger WHERE row_id = 'a'`).Scan(&op))
	require.Equal(t, int16(connector.OpDelete), op)
}

func groupStats(t *testing.T, m *metrics.Metrics) (groups uint64, changes float64) {
	t.Helper()
	var d dto.Metric
	require.NoError(t, m.GroupCommitSize.Write(&d))
	return d.GetHistogram().GetSampleCount(), d.GetHistogram().GetSampleSum()
}

// Concurrent changes share one group even when several committers are idle: only one group
// gathers at a time. (Each idle committer used to gather its own, which split arrivals.)
func TestOneGroupGathersAtATime(t *testing.T) {
	b := setup(t)
	m := metrics.New()
	rec := NewRecorder(b.logPool, RecorderOptions{Committers: 4, MaxWait: 300 * time.Millisecond, Metrics: m})
	defer rec.Close()
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			assert.NoError(t, rec.Record(context.Background(), ch(fmt.Sprint("g", i), t0, connector.OpUpsert, "x")))
		}()
	}
	wg.Wait()
	groups, changes := groupStats(t, m)
	require.Equal(t, uint64(1), groups, "8 changes within the wait must share one transaction")
	require.Equal(t, 8.0, changes)
	require.Equal(t, int64(8*256/8), rec.groupMean.Load(), "the group counts towards Saturated")
}

// While every committer is busy, arriving changes wait for the next free one and go together,
// however long that takes beyond group_commit_wait.
func TestGroupGathersWhileCommittersAreBusy(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	m := metrics.New()
	rec := NewRecorder(b.logPool, RecorderOptions{Committers: 1, MaxWait: time.Millisecond, Metrics: m})
	defer rec.Close()
	require.NoError(t, rec.Record(ctx, ch("held", t0, connector.OpUpsert, "v1")))
	lock, err := b.pool.Begin(ctx)
	require.NoError(t, err)
	defer lock.Rollback(ctx)
	_, err = lock.Exec(ctx, `SELECT 1 FROM appwrite_sync.ledger WHERE row_id = 'held' FOR UPDATE`)
	require.NoError(t, err)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the only committer blocks on the locked row
		defer wg.Done()
		assert.NoError(t, rec.Record(ctx, ch("held", t0.Add(time.Second), connector.OpUpsert, "v2")))
	}()
	require.Eventually(t, func() bool { // its group is in the committer
		var waiting bool
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) > 0 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`).Scan(&waiting))
		return waiting
	}, 10*time.Second, 5*time.Millisecond)
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			assert.NoError(t, rec.Record(ctx, ch(fmt.Sprint("w", i), t0, connector.OpUpsert, "x")))
		}()
	}
	time.Sleep(200 * time.Millisecond) // far beyond MaxWait
	groups, _ := groupStats(t, m)
	require.Equal(t, uint64(1), groups, "nothing else commits while the only committer is busy")
	require.NoError(t, lock.Rollback(ctx))
	wg.Wait()
	groups, changes := groupStats(t, m)
	require.Equal(t, uint64(3), groups, "the first row, the blocked group, then the ten together")
	require.Equal(t, 12.0, changes)
}

// The recorder's and the queue's pool plans generically; the general pool keeps Postgres's
// choice, and a plan_cache_mode in the URL wins.
func TestLogPoolPlansGeneric(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	mode := func(p *pgxpool.Pool, err error) string {
		t.Helper()
		require.NoError(t, err)
		defer p.Close()
		var m string
		require.NoError(t, p.QueryRow(ctx, `SHOW plan_cache_mode`).Scan(&m))
		return m
	}
	require.Equal(t, "force_generic_plan", mode(OpenLogPool(ctx, url, 1)))
	require.Equal(t, "auto", mode(OpenPool(ctx, url, 1)))
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	require.Equal(t, "force_custom_plan", mode(OpenLogPool(ctx, url+sep+"plan_cache_mode=force_custom_plan", 1)))
}

func TestGroupCommitBatchKeepsNewestPerRow(t *testing.T) {
	t.Parallel()
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
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT source::json->>'title' FROM appwrite_sync.ledger WHERE row_id = 'g'`).Scan(&title))
	require.Equal(t, "new", title)
}

// One group in which some changes advance their rows and others lose to versions already
// stored: each gets its own result (the losers are looked up after the upsert).
func TestGroupMixesAdvancedAndLost(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	_, err := b.rec.RecordBatch(ctx, []connector.Change{
		ch("dup", t0, connector.OpUpsert, "v1"),
		ch("stale", t0.Add(time.Second), connector.OpUpsert, "v2"),
		ch("adv", t0, connector.OpUpsert, "v1"),
	})
	require.NoError(t, err)
	res, err := b.rec.RecordBatch(ctx, []connector.Change{
		ch("adv", t0.Add(time.Second), connector.OpUpsert, "v2"),
		ch("dup", t0, connector.OpUpsert, "v1"),
		ch("new", t0, connector.OpUpsert, "v1"),
		ch("stale", t0, connector.OpUpsert, "v1"),
	})
	require.NoError(t, err)
	require.Equal(t, []Result{Recorded, Duplicate, Recorded, Stale}, res)
}

// A change Postgres refuses fails alone: the rest of its group is recorded, and it gets a
// permanent error (which the webhook handler quarantines) rather than the group's "state store
// unavailable". The two kinds here are turned away by the webhook decoder before they get this
// far; this is the net under whatever it misses.
func TestGroupSurvivesChangesTheStateStoreRefuses(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	m := metrics.New()
	rec := NewRecorder(b.logPool, RecorderOptions{MaxWait: 300 * time.Millisecond, Metrics: m})
	defer rec.Close()
	notUTF8 := ch("not-utf8", t0, connector.OpUpsert, "x")
	notUTF8.Row = json.RawMessage(strings.Replace(string(notUTF8.Row), `"title":"x"`, "\"title\":\"caf\xe9\"", 1))
	// An id too long for a btree entry; varied letters, so Postgres cannot compress it under the limit.
	var long strings.Builder
	rnd := rand.New(rand.NewPCG(1, 2))
	for long.Len() < 3000 {
		long.WriteByte("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"[rnd.IntN(62)])
	}
	tooLong := ch(long.String(), t0, connector.OpUpsert, "x")
	changes := []connector.Change{notUTF8, tooLong}
	for i := range 6 {
		changes = append(changes, ch(fmt.Sprint("ok", i), t0, connector.OpUpsert, "x"))
	}
	// ContentHash refuses the first row; the hash only has to be there.
	notUTF8.Hash, changes[0].Hash = []byte("0123456789abcdef"), []byte("0123456789abcdef")
	errs := make([]error, len(changes))
	results := make([]Result, len(changes))
	var wg sync.WaitGroup
	for i, c := range changes {
		wg.Add(1)
		go func() { defer wg.Done(); results[i], errs[i] = rec.RecordResult(ctx, c) }()
	}
	wg.Wait()
	for i, want := range []string{"invalid byte sequence", "index row size"} {
		require.Error(t, errs[i])
		require.True(t, connector.IsPermanent(errs[i]), "%v", errs[i])
		require.NotErrorIs(t, errs[i], ErrUnavailable)
		require.ErrorContains(t, errs[i], want)
	}
	for i := 2; i < len(changes); i++ {
		require.NoError(t, errs[i], changes[i].RowID)
		require.Equal(t, Recorded, results[i], changes[i].RowID)
	}
	var n int
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM appwrite_sync.ledger`).Scan(&n))
	require.Equal(t, 6, n)
	groups, _ := groupStats(t, m)
	require.Equal(t, uint64(6), groups, "the group of 8 failed; each good change then committed on its own")

	// A backfill page fails with the row named; the rest of the page is recorded.
	_, err := b.rec.RecordBatch(ctx, []connector.Change{ch("page1", t0, connector.OpUpsert, "x"), tooLong})
	require.ErrorContains(t, err, "row "+tooLong.RowID+": the state store refused the change")
	require.True(t, connector.IsPermanent(err))
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM appwrite_sync.ledger WHERE row_id = 'page1'`).Scan(&n))
	require.Equal(t, 1, n)
}

// readAll reads the whole log after pos.
func readAll(t *testing.T, q *Queue, after Pos) []Entry {
	t.Helper()
	es, err := q.ReadLog(context.Background(), after, 1000)
	require.NoError(t, err)
	return es
}

// readN reads the log after a position once n entries are visible there. Visibility waits for
// every older transaction of the cluster (transaction ids are cluster-wide), and other test
// packages run theirs on this cluster at the same time, so a change recorded a moment ago
// may not be readable yet.
func readN(t *testing.T, q *Queue, after Pos, n int) []Entry {
	t.Helper()
	var es []Entry
	require.Eventually(t, func() bool {
		es = readAll(t, q, after)
		return len(es) >= n
	}, 10*time.Second, 5*time.Millisecond, "%d log entries after %v", n, after)
	return es
}

func rowIDs(es []Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Item.RowID)
	}
	return out
}

func applied(es []Entry) []Outcome {
	outs := make([]Outcome, len(es))
	for i, e := range es {
		outs[i] = Outcome{Item: e.Item}
	}
	return outs
}

func TestLogCollapsesUpdatesAndMovesNewVersionsToTheEnd(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		require.NoError(t, b.rec.Record(ctx, ch(fmt.Sprint("r", i), t0, connector.OpUpsert, "v1")))
	}
	for i := 1; i <= 20; i++ { // many updates to one row: one log entry
		require.NoError(t, b.rec.Record(ctx, ch("r0", t0.Add(time.Duration(i)*time.Millisecond), connector.OpUpsert, fmt.Sprint("v", i))))
	}
	es := readN(t, b.q, Pos{}, 3)
	require.Equal(t, []string{"r1", "r2", "r0"}, rowIDs(es))
	require.Contains(t, string(es[2].Item.Row), `"v20"`)
	// A newer version arriving after a read appears again after the read position.
	require.NoError(t, b.rec.Record(ctx, ch("r1", t0.Add(time.Second), connector.OpDelete, "gone")))
	later := readN(t, b.q, es[len(es)-1].Pos, 1)
	require.Equal(t, []string{"r1"}, rowIDs(later))
	require.Equal(t, connector.OpDelete, later[0].Item.Version.Op)
	require.Greater(t, later[0].Item.Seq, es[0].Item.Seq)
	// Stale and duplicate changes do not move a row.
	require.NoError(t, b.rec.Record(ctx, ch("r2", t0, connector.OpUpsert, "v1")))
	require.NoError(t, b.rec.Record(ctx, ch("r0", t0, connector.OpUpsert, "old")))
	require.Empty(t, readAll(t, b.q, later[0].Pos))
}

// The hazard of reading a log by position: a transaction that took its position earlier can
// commit after a later one. The reader must not move past the later entry before the earlier
// one is visible, or the earlier one would be skipped for good.
func TestLogWaitsForOlderTransactions(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	slow, err := b.pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = slow.Rollback(ctx) }()
	_, err = slow.Exec(ctx, `INSERT INTO appwrite_sync.ledger (table_key, row_id, seq, updated_at, op, hash, action, row)
        VALUES ('main/posts', 'early', nextval('appwrite_sync.version_seq'), now(), 1, '\x00', 'create', '{}')`)
	require.NoError(t, err)
	require.NoError(t, b.rec.Record(ctx, ch("late", t0, connector.OpUpsert, "v1")))
	require.Empty(t, readAll(t, b.q, Pos{}), "a committed entry behind a running older transaction must wait")
	require.NoError(t, slow.Commit(ctx))
	require.Equal(t, []string{"early", "late"}, rowIDs(readN(t, b.q, Pos{}, 2)))
}

func TestLeaseIsExclusiveAndSettleMovesTheCursor(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	for i := 0; i < 4; i++ {
		require.NoError(t, b.rec.Record(ctx, ch(fmt.Sprint("r", i), t0, connector.OpUpsert, "v1")))
	}
	held, cur, left, err := b.q.Acquire(ctx, "s", "A", time.Minute)
	require.NoError(t, err)
	require.True(t, held)
	require.Equal(t, Pos{}, cur)
	require.InDelta(t, time.Minute.Seconds(), left.Seconds(), 5)
	held, _, _, err = b.q.Acquire(ctx, "s", "B", time.Minute)
	require.NoError(t, err)
	require.False(t, held, "a valid lease is exclusive")

	es := readN(t, b.q, Pos{}, 4)
	require.Len(t, es, 4)
	end := es[1].Pos
	_, err = b.q.Settle(ctx, "s", "B", time.Minute, applied(es[:2]), &end)
	require.ErrorIs(t, err, ErrLeaseLost, "only the holder settles")
	_, err = b.q.Settle(ctx, "s", "A", time.Minute, applied(es[:2]), &end)
	require.NoError(t, err)

	// A's lease lapses (A died): B takes over from the settled cursor.
	_, err = b.pool.Exec(ctx, `UPDATE appwrite_sync.sink_cursor SET lease_until = now() - interval '1s'`)
	require.NoError(t, err)
	held, cur, _, err = b.q.Acquire(ctx, "s", "B", time.Minute)
	require.NoError(t, err)
	require.True(t, held)
	require.Equal(t, end, cur)
	require.Equal(t, []string{"r2", "r3"}, rowIDs(readN(t, b.q, cur, 2)))
	_, err = b.q.Settle(ctx, "s", "A", time.Minute, applied(es[2:]), &es[3].Pos)
	require.ErrorIs(t, err, ErrLeaseLost, "a lapsed holder's late settle changes nothing")
	require.NoError(t, b.q.Resign(ctx, "s", "B"))
	held, _, _, err = b.q.Acquire(ctx, "s", "C", time.Minute)
	require.NoError(t, err)
	require.True(t, held, "a resigned lease is free at once")
}

func TestDeadLetterRetryDeferAndSweep(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	admin := NewAdmin(b.pool)
	_, _, _, err := b.q.Acquire(ctx, "s", "A", time.Minute)
	require.NoError(t, err)
	require.NoError(t, b.rec.Record(ctx, ch("d", t0, connector.OpUpsert, "v1")))
	require.NoError(t, b.rec.Record(ctx, ch("r", t0, connector.OpUpsert, "v1")))
	es := readN(t, b.q, Pos{}, 2)
	outs := []Outcome{}
	for _, e := range es {
		if e.Item.RowID == "d" {
			outs = append(outs, Outcome{Item: e.Item, Err: connector.Permanent("bad value", nil), Attempts: 1})
		} else {
			outs = append(outs, Outcome{Item: e.Item, Err: fmt.Errorf("timeout"), Backoff: time.Hour, Attempts: 1})
		}
	}
	_, err = b.q.Settle(ctx, "s", "A", time.Minute, outs, &es[1].Pos)
	require.NoError(t, err)
	ds, err := admin.DeadLetters(ctx, "s", "", 10)
	require.NoError(t, err)
	require.Len(t, ds, 1)
	require.Equal(t, "d", ds[0].RowID)
	require.Equal(t, "bad value", ds[0].Reason)
	due, err := b.q.ReadRetries(ctx, "s", 10)
	require.NoError(t, err)
	require.Empty(t, due, "dead letters and backed-off rows are not due")
	counts, _, _, err := admin.Counts(ctx, []string{"s"})
	require.NoError(t, err)
	require.Equal(t, SinkCounts{Pending: 1, DeadLetter: 1, LagSeconds: counts["s"].LagSeconds}, counts["s"])

	n, err := admin.ReplayDeadLetters(ctx, "s", "", "")
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
	due, err = b.q.ReadRetries(ctx, "s", 10)
	require.NoError(t, err)
	require.Equal(t, []string{"d"}, rowIDs(due))
	// Applying it clears the row; a newer deferred version is not overwritten by an older failure.
	_, err = b.q.Settle(ctx, "s", "A", time.Minute, applied(due), nil)
	require.NoError(t, err)
	require.NoError(t, b.rec.Record(ctx, ch("d", t0.Add(time.Second), connector.OpUpsert, "v2")))
	newer := readN(t, b.q, es[1].Pos, 1)
	require.Len(t, newer, 1)
	_, err = b.q.Settle(ctx, "s", "A", time.Minute, []Outcome{{Item: newer[0].Item, Deferred: true}}, nil)
	require.NoError(t, err)
	_, err = b.q.Settle(ctx, "s", "A", time.Minute, []Outcome{{Item: es[0].Item, Err: connector.Permanent("old failure", nil)}}, nil)
	require.NoError(t, err)
	due, err = b.q.ReadRetries(ctx, "s", 10)
	require.NoError(t, err)
	require.Equal(t, []string{"d"}, rowIDs(due), "the deferred newer version stays due")
	require.Equal(t, newer[0].Item.Seq, due[0].Item.Seq)

	// Tombstones older than the retention are swept only once every cursor passed them.
	require.NoError(t, b.rec.Record(ctx, ch("gone", t0, connector.OpDelete, "x")))
	_, err = b.pool.Exec(ctx, `UPDATE appwrite_sync.ledger SET recorded_at = now() - interval '31 days' WHERE row_id = 'gone'`)
	require.NoError(t, err)
	swept, err := admin.SweepTombstones(ctx, 30*24*time.Hour)
	require.NoError(t, err)
	require.Zero(t, swept, "not delivered yet")
	tail := readN(t, b.q, newer[0].Pos, 1)
	require.Equal(t, []string{"gone"}, rowIDs(tail))
	_, err = b.q.Settle(ctx, "s", "A", time.Minute, applied(tail), &tail[0].Pos)
	require.NoError(t, err)
	swept, err = admin.SweepTombstones(ctx, 30*24*time.Hour)
	require.NoError(t, err)
	require.Zero(t, swept, "the first sweep past the retention raises the horizon over it")
	nextSweep(t, b)
	swept, err = admin.SweepTombstones(ctx, 30*24*time.Hour)
	require.NoError(t, err)
	require.Equal(t, int64(1), swept)
}

// nextSweep moves the state store to the next hourly sweep: the horizons raised so far are an
// hour old.
func nextSweep(t *testing.T, b bundle) {
	t.Helper()
	_, err := b.pool.Exec(context.Background(), `UPDATE appwrite_sync.ledger_horizon SET raised_at = raised_at - interval '1 hour'`)
	require.NoError(t, err)
}

func TestReprojectQueuesLiveRowsOnFingerprintChange(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	admin := NewAdmin(b.pool)
	require.NoError(t, b.rec.Record(ctx, ch("p1", t0, connector.OpUpsert, "v")))
	require.NoError(t, b.rec.Record(ctx, ch("p2", t0, connector.OpDelete, "v")))
	n, err := admin.Reproject(ctx, "s", map[string]string{"main/posts": "fp1"})
	require.NoError(t, err)
	require.Zero(t, n["main/posts"], "a sink that never delivered reads the whole log anyway")
	n, err = admin.Reproject(ctx, "s", map[string]string{"main/posts": "fp1", "main/other": "fp1"})
	require.NoError(t, err)
	require.Zero(t, n["main/posts"], "unchanged fingerprint queues nothing")
	n, err = admin.Reproject(ctx, "s", map[string]string{"main/posts": "fp2"})
	require.NoError(t, err)
	require.Equal(t, int64(1), n["main/posts"], "live rows are queued again, tombstones not")
	due, err := b.q.ReadRetries(ctx, "s", 10)
	require.NoError(t, err)
	require.Equal(t, []string{"p1"}, rowIDs(due))
}

// Rows recorded before migration 6 keep their source in the json column row (the migration
// rewrites nothing): the log, the retries and a re-projection read them all the same, and
// their next version moves to source. A row with neither is refused.
func TestRowsRecordedBeforeTheTextColumnAreRead(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	legacy := ch("old", t0, connector.OpUpsert, "as json")
	_, err := b.pool.Exec(ctx, `INSERT INTO appwrite_sync.ledger (table_key, row_id, seq, updated_at, op, hash, action, row)
        VALUES ('main/posts', 'old', nextval('appwrite_sync.version_seq'), $1, 1, '\x00', 'update', $2::json)`, t0, string(legacy.Row))
	require.NoError(t, err)
	require.NoError(t, b.rec.Record(ctx, ch("new", t0, connector.OpUpsert, "as text")))
	es := readN(t, b.q, Pos{}, 2)
	require.Equal(t, []string{"old", "new"}, rowIDs(es))
	require.JSONEq(t, string(legacy.Row), string(es[0].Item.Row))
	require.Contains(t, string(es[1].Item.Row), `"title":"as text"`)

	_, err = NewAdmin(b.pool).Reproject(ctx, "s", map[string]string{"main/posts": "fp1"})
	require.NoError(t, err)
	_, err = NewAdmin(b.pool).Reproject(ctx, "s", map[string]string{"main/posts": "fp2"})
	require.NoError(t, err)
	due, err := b.q.ReadRetries(ctx, "s", 10)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"old", "new"}, rowIDs(due))
	for _, e := range due {
		if e.Item.RowID == "old" {
			require.JSONEq(t, string(legacy.Row), string(e.Item.Row))
		}
	}

	require.NoError(t, b.rec.Record(ctx, ch("old", t0.Add(time.Second), connector.OpUpsert, "v2")))
	var title string
	var rowIsNull bool
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT source::json->>'title', row IS NULL FROM appwrite_sync.ledger WHERE row_id = 'old'`).Scan(&title, &rowIsNull))
	require.Equal(t, "v2", title)
	require.True(t, rowIsNull, "the new version's source replaces the json")

	_, err = b.pool.Exec(ctx, `INSERT INTO appwrite_sync.ledger (table_key, row_id, seq, updated_at, op, hash, action)
        VALUES ('main/posts', 'none', 0, now(), 1, '\x00', 'update')`)
	require.ErrorContains(t, err, "ledger_source_present")
}

func TestStateStoreDownIsUnavailable(t *testing.T) {
	t.Parallel()
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

// With no wait (MaxWait 0) a group goes to a free committer at once; results are the same.
func TestNoWaitRecords(t *testing.T) {
	t.Parallel()
	b := setup(t)
	m := metrics.New()
	rec := NewRecorder(b.logPool, RecorderOptions{MaxWait: 0, Metrics: m})
	defer rec.Close()
	ctx := context.Background()
	r, err := rec.RecordResult(ctx, ch("nw", t0, connector.OpUpsert, "v1"))
	require.NoError(t, err)
	require.Equal(t, Recorded, r)
	r, err = rec.RecordResult(ctx, ch("nw", t0, connector.OpUpsert, "v1"))
	require.NoError(t, err)
	require.Equal(t, Duplicate, r)
	groups, changes := groupStats(t, m)
	require.Equal(t, uint64(2), groups)
	require.Equal(t, 2.0, changes)
}
