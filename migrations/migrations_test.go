package migrations

import (
	"context"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// Two replicas starting at once must both succeed and leave one clean migration state.
func TestConcurrentUpIsSafe(t *testing.T) {
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
	_, err := Up(context.Background(), "postgres://nobody@127.0.0.1:1/x?sslmode=disable&connect_timeout=2")
	require.ErrorContains(t, err, "connecting to state store")
}
