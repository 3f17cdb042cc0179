package ledger

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/internal/pgtest"
	"github.com/appwrite-sync/appwrite-sync/migrations"
)

// Ready names what is wrong with one of the fixed reasons; the details stay in the wrapped
// error.
func TestReadyReasons(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	reason := func(t *testing.T, url string) string {
		t.Helper()
		pool, err := OpenPool(ctx, url, 2)
		require.NoError(t, err)
		defer pool.Close()
		err = Ready(ctx, pool)
		if err == nil {
			return ""
		}
		var nr *NotReadyError
		require.ErrorAs(t, err, &nr)
		require.Error(t, nr.Err, "the details are kept for the log")
		return nr.Reason
	}
	require.Equal(t, ReasonUnreachable, reason(t, "postgres://someone@127.0.0.1:1/none?sslmode=disable"))
	url := pgtest.NewDatabase(t)
	require.Equal(t, ReasonNotMigrated, reason(t, url))
	_, err := migrations.Up(ctx, url)
	require.NoError(t, err)
	require.Equal(t, "", reason(t, url))
	pool, err := OpenPool(ctx, url, 1)
	require.NoError(t, err)
	defer pool.Close()
	_, err = pool.Exec(ctx, `UPDATE `+migrations.Table+` SET dirty = true`)
	require.NoError(t, err)
	require.Equal(t, ReasonDirty, reason(t, url))
	_, err = pool.Exec(ctx, `UPDATE `+migrations.Table+` SET dirty = false, version = 1`)
	require.NoError(t, err)
	require.Equal(t, ReasonNotMigrated, reason(t, url))
}
