package ledger

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/internal/pgtest"
	"github.com/appwrite-sync/appwrite-sync/migrations"
)

// TestRecordParamsMatchPgx: the hand-written binary arrays are byte for byte what pgx's own
// codecs produce for the same values, including NULLs, empty strings, non-ASCII text,
// sub-microsecond and pre-1970 times, negative numbers and empty arrays.
func TestRecordParamsMatchPgx(t *testing.T) {
	t.Parallel()
	m := pgtype.NewMap()
	enc := func(oid uint32, v any) []byte {
		t.Helper()
		b, err := m.Encode(oid, pgtype.BinaryFormatCode, v, nil)
		require.NoError(t, err)
		return b
	}
	cases := []struct {
		name   string
		tk     []string
		ids    []string
		uas    []time.Time
		ops    []int16
		hashes [][]byte
		seqs   [][]byte
		acts   []string
		rows   [][]byte
		auth   []bool
	}{
		{name: "empty group", tk: []string{}, ids: []string{}, uas: []time.Time{}, ops: []int16{}, hashes: [][]byte{}, seqs: [][]byte{}, acts: []string{}, rows: [][]byte{}, auth: []bool{}},
		{
			name: "one row",
			tk:   []string{"main/posts"}, ids: []string{"r1"},
			uas: []time.Time{time.Date(2026, 3, 26, 10, 0, 0, 123456789, time.UTC)},
			ops: []int16{1}, hashes: [][]byte{{0, 1, 2, 0xff}}, seqs: [][]byte{[]byte("42")}, acts: []string{"create"},
			rows: [][]byte{[]byte(`{"$id":"r1","title":"é ünïcode ✓"}`)}, auth: []bool{true},
		},
		{
			name: "many rows, NULLs and edge values",
			tk:   []string{"main/posts", "", "ü/ß"}, ids: []string{"a", "", "ö\"\\,{}"},
			uas: []time.Time{
				time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.UTC),
				time.Date(2000, 1, 1, 0, 0, 0, 1, time.FixedZone("x", -7*3600)),
				time.Unix(0, 0),
			},
			ops:    []int16{-1, 0, 32767},
			hashes: [][]byte{{}, nil, make([]byte, 16)},
			seqs:   [][]byte{nil, {}, []byte("9007199254740993")},
			acts:   []string{"delete", "", "backfill"},
			rows:   [][]byte{[]byte(`{}`), nil, []byte(`{"a":[1,2,{"b":null}]}`)},
			auth:   []bool{false, true, false},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			probe := len(c.tk)%2 == 1
			got := recordParams(c.tk, c.ids, c.uas, c.ops, c.hashes, c.seqs, c.acts, c.rows, c.auth, probe)
			want := [][]byte{
				enc(pgtype.TextArrayOID, c.tk),
				enc(pgtype.TextArrayOID, c.ids),
				enc(pgtype.TimestamptzArrayOID, c.uas),
				enc(pgtype.Int2ArrayOID, c.ops),
				enc(pgtype.ByteaArrayOID, c.hashes),
				enc(pgtype.TextArrayOID, c.seqs),
				enc(pgtype.TextArrayOID, c.acts),
				enc(pgtype.TextArrayOID, c.rows),
				enc(pgtype.BoolArrayOID, c.auth),
				enc(pgtype.BoolOID, probe),
			}
			require.Len(t, got, len(want))
			for i := range want {
				require.Equal(t, want[i], got[i], "parameter $%d", i+1)
			}
		})
	}
}

// TestRecordSurvivesLostPreparedStatement: a connection whose prepared record statement was
// dropped behind pgx's back (DEALLOCATE by a pooler such as PgBouncer, or by hand), or
// invalidated by a migration, prepares it again, and the group still records instead of
// failing on that connection forever.
func TestRecordSurvivesLostPreparedStatement(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewMigratedDatabase(t, migrations.Up)
	pool, err := OpenLogPool(ctx, url, 1) // one connection: the DEALLOCATE hits the recorder's
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	rec := NewRecorder(pool, RecorderOptions{})
	t.Cleanup(rec.Close)
	require.NoError(t, rec.Record(ctx, ch("a", t0, connector.OpUpsert, "v1")))
	_, err = pool.Exec(ctx, "DEALLOCATE "+recordStmt)
	require.NoError(t, err)
	require.NoError(t, rec.Record(ctx, ch("a", t0.Add(time.Second), connector.OpUpsert, "v2")))
	// A migration that changes a returned column's type invalidates the prepared statement
	// ("cached plan must not change result type"): prepared again, it records.
	_, err = pool.Exec(ctx, "ALTER TABLE appwrite_sync.ledger ALTER COLUMN row_id TYPE varchar")
	require.NoError(t, err)
	require.NoError(t, rec.Record(ctx, ch("a", t0.Add(2*time.Second), connector.OpUpsert, "v3")))
	var title string
	require.NoError(t, pool.QueryRow(ctx, `SELECT source::json->>'title' FROM appwrite_sync.ledger WHERE row_id = 'a'`).Scan(&title))
	require.Equal(t, "v3", title)
}

// TestRecordWithHistorySurvivesLostPreparedStatement: as TestRecordSurvivesLostPreparedStatement,
// for the statements a group with history runs in one batch (execPipeline): the history insert
// dropped behind pgx's back is prepared again, and the group records.
func TestRecordWithHistorySurvivesLostPreparedStatement(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewMigratedDatabase(t, migrations.Up)
	pool, err := OpenLogPool(ctx, url, 1) // one connection: the DEALLOCATE hits the recorder's
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	rec := NewRecorder(pool, RecorderOptions{History: func(connector.TableKey) (HistoryPolicy, bool) { return HistoryPolicy{}, true }})
	t.Cleanup(rec.Close)
	require.NoError(t, rec.Record(ctx, ch("a", t0, connector.OpUpsert, "v1")))
	_, err = pool.Exec(ctx, "DEALLOCATE "+historyStmt)
	require.NoError(t, err)
	require.NoError(t, rec.Record(ctx, ch("a", t0.Add(time.Second), connector.OpUpsert, "v2")))
	var n int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM appwrite_sync.history WHERE row_id = 'a'`).Scan(&n))
	require.Equal(t, 2, n)
}
