package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/internal/pgtest"
	"github.com/appwrite-sync/appwrite-sync/migrations"
)

// A warehouse outage only delays: ingest keeps answering 200 while the warehouse cluster is
// stopped, the sink shows as paused, and everything lands once it is back.
func TestWarehouseOutageOnlyDelays(t *testing.T) {
	t.Parallel()
	whCluster, err := pgtest.StartCluster()
	require.NoError(t, err)
	defer whCluster.Stop()
	state := pgtest.NewMigratedDatabase(t, migrations.Up)
	wh := pgtest.NewDatabaseOn(t, whCluster)
	in := startInstance(t, testConfig(t, state, wh, ""))

	base := time.Date(2026, 3, 26, 10, 0, 0, 0, time.UTC)
	require.Equal(t, 200, post(t, in.base, "r0", event{"create", rowBody("r0", base, "before", 1, "a")}))
	waitDrained(t, state, 20*time.Second)

	whCluster.StopServer()
	for i := 1; i <= 50; i++ {
		id := fmt.Sprintf("r%d", i)
		require.Equal(t, 200, post(t, in.base, id, event{"create", rowBody(id, base.Add(time.Second), "during", int64(i), "a")}))
	}
	require.Equal(t, 200, post(t, in.base, "r0", event{"update", rowBody("r0", base.Add(2*time.Second), "after", 2, "b")}))
	// The backlog shows on /metrics by itself (no /admin/status call refreshes it).
	require.Eventually(t, func() bool {
		code, body := adminGet(t, in, "/metrics")
		return code == 200 && strings.Contains(body, `appwrite_sync_sink_pending_rows{sink="postgres"} 51`)
	}, 20*time.Second, 50*time.Millisecond, "the pending gauge must follow the backlog")
	require.Eventually(t, func() bool {
		code, body := adminGet(t, in, "/admin/status")
		return code == 200 && strings.Contains(body, `"state":"paused"`)
	}, 20*time.Second, 50*time.Millisecond, "status must show the warehouse sink paused")

	require.NoError(t, whCluster.Restart())
	waitDrained(t, state, 60*time.Second)
	got := warehouseRows(t, wh)
	require.Len(t, got, 51)
	require.Equal(t, "after", got["r0"].Title)
	require.Equal(t, int64(37), got["r37"].Views)
	code, body := adminGet(t, in, "/admin/status")
	require.Equal(t, 200, code)
	require.Contains(t, body, `"state":"running"`)
	require.Contains(t, body, `"dead_letter":0`)
}

// With the state store unreachable the webhook answers 503 and nothing is stored; /readyz
// says why. Nothing answered 2xx may be missing afterwards.
func TestStateStoreDownAnswers503(t *testing.T) {
	t.Parallel()
	stCluster, err := pgtest.StartCluster()
	require.NoError(t, err)
	defer stCluster.Stop()
	state := pgtest.NewDatabaseOn(t, stCluster)
	wh := pgtest.NewDatabase(t)
	in := startInstance(t, testConfig(t, state, wh, ""))
	base := time.Date(2026, 3, 26, 10, 0, 0, 0, time.UTC)
	require.Equal(t, 200, post(t, in.base, "ok1", event{"create", rowBody("ok1", base, "x", 1, "a")}))

	stCluster.StopServer()
	code := post(t, in.base, "lost", event{"create", rowBody("lost", base, "x", 1, "a")})
	require.Equal(t, http.StatusServiceUnavailable, code)
	resp, err := http.Get(in.base + "/readyz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)

	require.NoError(t, stCluster.Restart())
	require.Eventually(t, func() bool {
		return post(t, in.base, "ok2", event{"create", rowBody("ok2", base, "y", 2, "a")}) == 200
	}, 30*time.Second, 100*time.Millisecond)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, state)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var ids []string
	rows, err := conn.Query(ctx, `SELECT row_id FROM appwrite_sync.ledger ORDER BY row_id`)
	require.NoError(t, err)
	ids, err = pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Equal(t, []string{"ok1", "ok2"}, ids, "the change answered 503 must not be stored")
}
