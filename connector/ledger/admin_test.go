package ledger

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector"
)

// The statements that run all the time, on connections that live for an hour, must read the
// ledger through its indexes however it grew since they were first planned: Postgres keeps a
// plan per connection after five runs, and a plan made while the ledger was small may be a
// sequential scan. Two did that before this test:
//   - the gauges' pending count (SinkCounts, every 15 s), planned without knowing the cursor
//     (a third of the ledger, Postgres guesses): in the ingest benchmark each refresh read the
//     whole ledger, 30 to 116 ms of Postgres CPU;
//   - the recorder's look-up of the versions that beat a group's stale or duplicate changes
//     (lostSQL), which a backfill over rows the ledger holds runs for nearly every page;
//   - the record statement's look-up of a row below the tombstone horizon, when written as
//     EXISTS (a hashed subplan).
//
// The list of tables every start reads (LedgerTables) is checked here too: it read the whole
// ledger (SELECT DISTINCT) before the webhook listener opened.
func TestHotStatementsDoNotScanTheLedger(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	var version int
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT current_setting('server_version_num')::int`).Scan(&version))
	if version < 150000 {
		t.Skip("needs pg_stat_force_next_flush (PostgreSQL 15+) to read the scan counters at once")
	}
	// One connection, so its plan cache is the one that matters and the statistics it
	// reports are the ones the statements produced.
	cfg := b.pool.Config().Copy()
	cfg.MaxConns, cfg.MinConns = 1, 0
	one, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	defer one.Close()
	// The recorder on one connection of its own, with the generic plans serve gives it
	// (OpenLogPool).
	logCfg := b.logPool.Config().Copy()
	logCfg.MaxConns, logCfg.MinConns = 1, 0
	oneLog, err := pgxpool.NewWithConfig(ctx, logCfg)
	require.NoError(t, err)
	defer oneLog.Close()
	// With row history on: its insert probes the ledger for the horizon as the record
	// statement does, in the same batch.
	admin, q, rec := NewAdmin(one), NewQueue(one), NewRecorder(oneLog, RecorderOptions{
		History: func(connector.TableKey) (HistoryPolicy, bool) { return HistoryPolicy{}, true }})
	defer rec.Close()
	insert := func(from, n int) {
		_, err := b.pool.Exec(ctx, `INSERT INTO appwrite_sync.ledger (table_key, row_id, seq, updated_at, op, hash, action, row)
            SELECT 'main/posts', 'r' || i, nextval('appwrite_sync.version_seq'), $3, 1, '\x00', 'create', json_build_object('pad', repeat('x', 900))
            FROM generate_series($1::int, $2::int) i`, from, from+n-1, t0)
		require.NoError(t, err)
	}
	cursor := func(behind int) Pos {
		var p Pos
		require.NoError(t, b.pool.QueryRow(ctx, `INSERT INTO appwrite_sync.sink_cursor AS c (sink, tx, seq)
            SELECT 's', tx, seq FROM appwrite_sync.ledger ORDER BY tx DESC, seq DESC OFFSET $1 LIMIT 1
            ON CONFLICT (sink) DO UPDATE SET tx = excluded.tx, seq = excluded.seq RETURNING c.tx, c.seq`, behind).Scan(&p.Tx, &p.Seq))
		return p
	}
	const behind = 7
	run := func(after Pos) {
		for range 8 { // past the five runs after which Postgres may keep a generic plan
			counts, _, err := admin.SinkCounts(ctx, []string{"s"})
			require.NoError(t, err)
			require.Equal(t, int64(behind), counts["s"].Pending)
			require.Greater(t, counts["s"].LagSeconds, 0.0)
			es, err := q.ReadLog(ctx, after, 100)
			require.NoError(t, err)
			require.Len(t, es, behind)
			rs, err := q.ReadRetries(ctx, "x", 10)
			require.NoError(t, err)
			require.Len(t, rs, 3)
			// Versions older than the stored ones: the recorder looks up what beat them (lostSQL).
			// They are below the tombstone horizon, as is a row the ledger never held: the
			// record statement looks each up in the ledger (it once planned that as a scan).
			res, err := rec.RecordBatch(ctx, []connector.Change{ch("r1", t0.Add(-time.Hour), connector.OpUpsert, "old"), ch("r2", t0.Add(-time.Hour), connector.OpUpsert, "old"),
				ch("never", t0.Add(-time.Hour), connector.OpUpsert, "replay")})
			require.NoError(t, err)
			require.Equal(t, []Result{Stale, Stale, Stale}, res)
		}
	}
	// A young ledger: a few rows, the sink a few behind, tombstones swept up to t0.
	insert(1, 20)
	_, err = b.pool.Exec(ctx, `INSERT INTO appwrite_sync.ledger_horizon (table_key, updated_at) VALUES ('main/posts', $1)`, t0)
	require.NoError(t, err)
	_, err = b.pool.Exec(ctx, `INSERT INTO appwrite_sync.sink_retry (sink, table_key, row_id, seq, attempts)
        SELECT 'x', table_key, row_id, seq, 1 FROM appwrite_sync.ledger WHERE row_id IN ('r1', 'r2', 'r3')`)
	require.NoError(t, err)
	run(cursor(behind))
	// It grows by 100,000 rows the sink has applied (no VACUUM or ANALYZE yet, as in the first
	// minute after a burst).
	for i := range 10 {
		insert(100+i*10000, 10000)
	}
	after := cursor(behind)
	seqScans := func() int64 {
		// Flushed when the connection goes idle after this statement, before it answers.
		_, err := one.Exec(ctx, `SELECT pg_stat_force_next_flush()`)
		require.NoError(t, err)
		_, err = oneLog.Exec(ctx, `SELECT pg_stat_force_next_flush()`)
		require.NoError(t, err)
		var n int64
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT seq_scan FROM pg_stat_user_tables WHERE relid = 'appwrite_sync.ledger'::regclass`).Scan(&n))
		return n
	}
	// Two more tables around it, for the table list every start reads.
	_, err = b.pool.Exec(ctx, `INSERT INTO appwrite_sync.ledger (table_key, row_id, seq, tx, updated_at, op, hash, action, row)
        VALUES ('main/a', 'x', 0, '0', now(), 2, '\x00', 'delete', '{}'), ('shop/z', 'y', 0, '0', now(), 1, '\x00', 'create', '{}')`) // applied long ago
	require.NoError(t, err)
	before := seqScans()
	run(after)
	tables, err := admin.LedgerTables(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"main/a", "main/posts", "shop/z"}, tables)
	require.Equal(t, before, seqScans(), "a hot statement scanned the whole ledger")

	// A sink without a cursor has every change pending.
	counts, _, err := admin.SinkCounts(ctx, []string{"never-started"})
	require.NoError(t, err)
	require.Equal(t, int64(100020), counts["never-started"].Pending)
}
