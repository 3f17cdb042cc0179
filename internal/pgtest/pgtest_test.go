package pgtest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) { Main(m) }

func TestNewDatabaseIsFreshAndReal(t *testing.T) {
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
