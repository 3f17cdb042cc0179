package pgtest

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) { Main(m) }

func TestNewDatabaseIsFreshAndReal(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u := NewDatabase(t)
	conn, err := pgx.Connect(ctx, u)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var n int
	require.NoError(t, conn.QueryRow(ctx, "select count(*) from pg_tables where schemaname='public'").Scan(&n))
	require.Equal(t, 0, n)
	var v string
	require.NoError(t, conn.QueryRow(ctx, "show server_version").Scan(&v))
	require.NotEmpty(t, v)
}

// The template is migrated once; every test gets its own copy of it.
func TestNewMigratedDatabaseCopiesATemplateMigratedOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var calls atomic.Int32
	up := func(ctx context.Context, url string) (uint, error) {
		calls.Add(1)
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			return 0, err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, "create table t (id int primary key); insert into t values (1)")
		return 1, err
	}
	a, b := NewMigratedDatabase(t, up), NewMigratedDatabase(t, up)
	require.NotEqual(t, a, b)
	require.EqualValues(t, 1, calls.Load(), "migrated once, into the template")
	ca, err := pgx.Connect(ctx, a)
	require.NoError(t, err)
	defer ca.Close(ctx)
	_, err = ca.Exec(ctx, "insert into t values (2)")
	require.NoError(t, err)
	cb, err := pgx.Connect(ctx, b)
	require.NoError(t, err)
	defer cb.Close(ctx)
	var n int
	require.NoError(t, cb.QueryRow(ctx, "select count(*) from t").Scan(&n))
	require.Equal(t, 1, n, "each test has its own copy")
}
