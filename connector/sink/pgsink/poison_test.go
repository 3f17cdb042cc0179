package pgsink

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/connector/ledger"
	"github.com/appwrite-sync/appwrite-sync/connector/sink/sinktest"
	"github.com/appwrite-sync/appwrite-sync/internal/pgtest"
	"github.com/appwrite-sync/appwrite-sync/migrations"
)

// The poison row of issue #17, through the real ledger and engine: a row whose 30 bigint
// columns hold non-ASCII text is rejected with an error text of over 2,000 bytes. It is
// dead-lettered with that text cut on a character boundary, and the rows recorded after it
// reach the warehouse.
func TestWideNonASCIIPoisonRowIsDeadLetteredAndTheRestLands(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const columns = 30
	var cols strings.Builder
	for i := range columns {
		fmt.Fprintf(&cols, "      col_%02d: bigint\n", i)
	}
	m := sinktest.ParseMapping(t, "poison", "- database: main\n  table: posts\n  postgres:\n    table: posts\n    columns:\n"+cols.String())

	state := pgtest.NewMigratedDatabase(t, migrations.Up)
	pool, err := ledger.OpenPool(ctx, state, 8)
	require.NoError(t, err)
	defer pool.Close()
	wh, err := pgxpool.New(ctx, pgtest.NewDatabase(t))
	require.NoError(t, err)
	defer wh.Close()
	s := New(wh, m, nil)
	defer s.Close()
	rec, stop := sinktest.Deliver(pool, ledger.SinkConfig{Sink: s, BatchSize: 50})
	defer stop()

	at := time.Date(2026, 3, 26, 10, 0, 0, 0, time.UTC)
	record := func(id string, value any) {
		row := map[string]any{"$id": id, "$databaseId": "main", "$tableId": "posts",
			"$createdAt": "2026-01-01T00:00:00.000+00:00", "$updatedAt": at.Format("2006-01-02T15:04:05.000+00:00")}
		for i := range columns {
			row[fmt.Sprintf("col_%02d", i)] = value
		}
		b, err := json.Marshal(row)
		require.NoError(t, err)
		_, err = rec.RecordResult(ctx, connector.Change{Key: connector.TableKey{Database: "main", Table: "posts"},
			RowID: id, Op: connector.OpUpsert, UpdatedAt: at, Action: "create", Row: b})
		require.NoError(t, err)
	}
	record("poison", strings.Repeat("ü", 40))
	for i := range 20 {
		record(fmt.Sprint("good", i), i)
	}
	admin := ledger.NewAdmin(pool)
	var ds []ledger.DeadLetter
	require.Eventually(t, func() bool {
		ds, err = admin.DeadLetters(ctx, s.Name(), "", 10)
		return err == nil && len(ds) == 1
	}, 10*time.Second, 20*time.Millisecond, "the poison row must be dead-lettered")
	require.Equal(t, "poison", ds[0].RowID)
	require.True(t, utf8.ValidString(ds[0].Reason))
	require.Contains(t, ds[0].Reason, `col_00`)
	require.True(t, strings.HasSuffix(ds[0].Reason, "…"), "the long text is cut with a mark")
	require.Eventually(t, func() bool {
		var n int
		return wh.QueryRow(ctx, `SELECT count(*) FROM poison.posts`).Scan(&n) == nil && n == 20
	}, 10*time.Second, 20*time.Millisecond, "the rows after the poison row must land")
}
