package ledger

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
)

// SinkCounts runs every 15 s for the gauges, on connections that live for an hour, against a
// ledger of any size. It must read the pending part of the log through its index, never the
// whole ledger. Postgres plans the pending count without knowing the cursor (a third of the
// ledger, it guesses), and a plan made while the ledger was small, a sequential scan, stayed
// cached on the connection while the ledger grew: in the ingest benchmark every refresh then
// scanned it all, 30 to 116 ms of Postgres CPU each time.
func TestSinkCountsDoNotScanTheLedger(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	// One connection, so its plan cache is the one that matters and the statistics it
	// reports are the ones SinkCounts produced.
	cfg := b.pool.Config().Copy()
	cfg.MaxConns, cfg.MinConns = 1, 0
	one, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	defer one.Close()
	admin := NewAdmin(one)
	insert := func(from, n int) {
		_, err := b.pool.Exec(ctx, `INSERT INTO appwrite_sync.ledger (table_key, row_id, seq, updated_at, op, hash, action, row)
            SELECT 'main/posts', 'r' || i, nextval('appwrite_sync.version_seq'), now(), 1, '\x00', 'create', json_build_object('pad', repeat('x', 900))
            FROM generate_series($1::int, $2::int) i`, from, from+n-1)
		require.NoError(t, err)
	}
	const behind = 7
	count := func(want int64) {
		for range 8 { // past the five runs after which Postgres may keep a generic plan
			counts, _, err := admin.SinkCounts(ctx, []string{"s"})
			require.NoError(t, err)
			require.Equal(t, want, counts["s"].Pending)
			require.Greater(t, counts["s"].LagSeconds, 0.0)
		}
	}
	// A young ledger: a few rows, the sink a few behind.
	insert(1, 20)
	_, err = b.pool.Exec(ctx, `INSERT INTO appwrite_sync.sink_cursor (sink, tx, seq)
        SELECT 's', tx, seq FROM appwrite_sync.ledger ORDER BY tx DESC, seq DESC OFFSET $1 LIMIT 1`, behind)
	require.NoError(t, err)
	count(behind)
	// It grows by 100,000 rows the sink has applied (no VACUUM or ANALYZE yet, as in the first
	// minute after a burst).
	for i := range 10 {
		insert(100+i*10000, 10000)
	}
	_, err = b.pool.Exec(ctx, `UPDATE appwrite_sync.sink_cursor SET (tx, seq) =
        (SELECT tx, seq FROM appwrite_sync.ledger ORDER BY tx DESC, seq DESC OFFSET $1 LIMIT 1)`, behind)
	require.NoError(t, err)
	seqScans := func() int64 {
		// Flushed when the connection goes idle after this statement, before it answers.
		_, err := one.Exec(ctx, `SELECT pg_stat_force_next_flush()`)
		require.NoError(t, err)
		var n int64
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT seq_scan FROM pg_stat_user_tables WHERE relid = 'appwrite_sync.ledger'::regclass`).Scan(&n))
		return n
	}
	before := seqScans()
	count(behind)
	require.Equal(t, before, seqScans(), "SinkCounts scanned the whole ledger for a sink %d changes behind", behind)

	// A sink without a cursor has every change pending.
	counts, _, err := admin.SinkCounts(ctx, []string{"never-started"})
	require.NoError(t, err)
	require.Equal(t, int64(100020), counts["never-started"].Pending)
}
