package migrations

import (
	"context"
	"database/sql"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/golang-migrate/migrate/v4"
	migratepgx "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// Two replicas starting at once must both succeed and leave one clean migration state.
func TestConcurrentUpIsSafe(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	latest, err := Latest()
	require.NoError(t, err)
	require.GreaterOrEqual(t, latest, uint(1))

	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, errs[i] = Up(ctx, url)
		}(i)
	}
	wg.Wait()
	for _, e := range errs {
		require.NoError(t, e)
	}
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var v int64
	var dirty bool
	require.NoError(t, conn.QueryRow(ctx, StatusQuery).Scan(&v, &dirty))
	require.Equal(t, int64(latest), v)
	require.False(t, dirty)
	var n int
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM appwrite_sync.ledger").Scan(&n))
	require.Zero(t, n)

	// Running again is a no-op.
	v2, err := Up(ctx, url)
	require.NoError(t, err)
	require.Equal(t, latest, v2)
}

func TestUpUnreachable(t *testing.T) {
	t.Parallel()
	_, err := Up(context.Background(), "postgres://nobody@127.0.0.1:1/x?sslmode=disable&connect_timeout=2")
	require.ErrorIs(t, err, ErrConnect, "serve retries this, and only this, at start")
	require.ErrorContains(t, err, "connecting to state store")
}

// Migration 6 keeps rows recorded before it in the json column, and its down migration puts
// the rows recorded since back there.
func TestLedgerSourceTextDownKeepsEveryRow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	_, err := Up(ctx, url)
	require.NoError(t, err)
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `INSERT INTO appwrite_sync.ledger (table_key, row_id, seq, updated_at, op, hash, action, row, source)
        VALUES ('main/posts', 'before', 1, now(), 1, '\x00', 'update', '{"v":"json"}', NULL),
               ('main/posts', 'after', 2, now(), 1, '\x00', 'update', NULL, '{"v":"text"}')`)
	require.NoError(t, err)

	db, err := sql.Open("pgx", url)
	require.NoError(t, err)
	defer db.Close()
	drv, err := migratepgx.WithInstance(db, &migratepgx.Config{MigrationsTable: Table})
	require.NoError(t, err)
	src, err := iofs.New(files, ".")
	require.NoError(t, err)
	m, err := migrate.NewWithInstance("iofs", src, "pgx5", drv)
	require.NoError(t, err)
	require.NoError(t, m.Migrate(5), "down through migration 6")
	rows, err := conn.Query(ctx, `SELECT row_id, row->>'v' FROM appwrite_sync.ledger ORDER BY seq`)
	require.NoError(t, err)
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([2]string, error) {
		var v [2]string
		return v, r.Scan(&v[0], &v[1])
	})
	require.NoError(t, err)
	require.Equal(t, [][2]string{{"before", "json"}, {"after", "text"}}, got)
	require.NoError(t, m.Up(), "and up again")
}

// A connection string pgx cannot parse is never echoed: pgx's own message masks the password
// of a malformed one only in part.
func TestUpNeverEchoesTheConnectionString(t *testing.T) {
	t.Parallel()
	for _, dsn := range []string{"host=127.0.0.1 password='pw-Secret1 pw-Secret2", "postgres://u:pw-Secret3@h:port/db"} {
		_, err := Up(context.Background(), dsn)
		require.Error(t, err)
		require.NotContains(t, err.Error(), "pw-Secret", dsn)
	}
}

// A migration that fails half-way, as one killed half-way (SIGKILL, OOM) would, rolls back
// whole and leaves the state store clean at the version before it: the next start runs it
// again. golang-migrate alone left it "dirty", and every later start refused to run.
func TestFailedMigrationLeavesTheStateStoreClean(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	fsys := fstest.MapFS{
		"1_a.up.sql":   {Data: []byte("CREATE TABLE mig_a (x int);")},
		"1_a.down.sql": {Data: []byte("DROP TABLE mig_a;")},
		"2_b.up.sql":   {Data: []byte("CREATE TABLE mig_b (x int); INSERT INTO mig_a VALUES (1); SELECT 1/0;")},
		"2_b.down.sql": {Data: []byte("DROP TABLE mig_b;")},
	}
	src, err := iofs.New(fsys, ".")
	require.NoError(t, err)
	_, err = up(ctx, url, src)
	require.ErrorContains(t, err, "migration 2 failed (rolled back")

	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var v int64
	var dirty bool
	require.NoError(t, conn.QueryRow(ctx, StatusQuery).Scan(&v, &dirty))
	require.Equal(t, int64(1), v)
	require.False(t, dirty, "a failed migration must not leave the state store dirty")
	var n int
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM mig_a").Scan(&n))
	require.Zero(t, n, "the failed migration's statements rolled back with it")
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE tablename = 'mig_b'").Scan(&n))
	require.Zero(t, n)

	// The next start (the migration fixed, or the kill not repeated) runs it.
	fsys["2_b.up.sql"] = &fstest.MapFile{Data: []byte("CREATE TABLE mig_b (x int); INSERT INTO mig_a VALUES (1);")}
	src, err = iofs.New(fsys, ".")
	require.NoError(t, err)
	got, err := up(ctx, url, src)
	require.NoError(t, err)
	require.Equal(t, uint(2), got)
	require.NoError(t, conn.QueryRow(ctx, StatusQuery).Scan(&v, &dirty))
	require.Equal(t, int64(2), v)
	require.False(t, dirty)
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM mig_a").Scan(&n))
	require.Equal(t, 1, n)
}
