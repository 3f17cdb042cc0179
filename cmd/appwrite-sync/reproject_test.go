package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector/config"
	"github.com/appwrite-sync/appwrite-sync/internal/pgtest"
	"github.com/appwrite-sync/appwrite-sync/migrations"
)

// When a table's mapping changes, its rows are re-projected from the ledger's stored source
// rows on the next start: a new column is filled for rows recorded before it existed. The
// webhook listener does not wait for that: queueing a large table's rows takes minutes.
func TestMappingChangeReprojectsFromLedger(t *testing.T) {
	t.Parallel()
	state := pgtest.NewMigratedDatabase(t, migrations.Up)
	cfg := testConfig(t, state, state, "")
	in := startInstance(t, cfg)
	t0 := time.Date(2026, 3, 26, 10, 0, 0, 0, time.UTC)
	for i := 0; i < 20; i++ {
		id := fmt.Sprintf("m%d", i)
		require.Equal(t, 200, post(t, in.base, id, event{"create", rowBody(id, t0, "title", int64(i), fmt.Sprintf("author-%d", i))}))
	}
	waitDrained(t, state, 20*time.Second)
	in.stop()

	// Same instance settings, one more column sourced from the relationship's $id.
	text := fmt.Sprintf(`
listen: %q
admin: {listen: %q, token: %q}
webhooks: [{url: %q, signing_keys: [%q]}]
state: {database_url: %q, group_commit_wait: 1ms}
warehouse: {schema: wh}
delivery: {poll_interval: 20ms}
log: {level: warn}
tables:
  - database: main
    table: posts
    postgres:
      table: posts
      columns:
        title: text
        views: bigint
        author_name: {from: author.name, type: text}
        author_id: {from: author.$id, type: text}
`, cfg.Listen, cfg.Admin.Listen, testToken, webhookURL, testSecret, state)
	cfg2, err := config.Parse("v2.yaml", []byte(text), func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, state)
	require.NoError(t, err)
	defer conn.Close(ctx)
	// Hold the re-projection: it waits for the fingerprints this transaction locks.
	hold, err := conn.Begin(ctx)
	require.NoError(t, err)
	_, err = hold.Exec(ctx, `SELECT * FROM appwrite_sync.sink_tables FOR UPDATE`)
	require.NoError(t, err)
	in = startInstance(t, cfg2) // fails unless the listener opens meanwhile
	require.Equal(t, 200, post(t, in.base, "late", event{"create", rowBody("late", t0, "title", 99, "author-late")}))
	require.NoError(t, hold.Rollback(ctx))
	require.Eventually(t, func() bool {
		var n int
		err := conn.QueryRow(ctx, `SELECT count(*) FROM wh.posts WHERE author_id = 'a1'`).Scan(&n)
		return err == nil && n == 21
	}, 20*time.Second, 50*time.Millisecond, "every existing row must be re-projected with the new column, and the new one delivered")
	var names string
	require.NoError(t, conn.QueryRow(ctx, `SELECT string_agg(author_name, ',' ORDER BY views) FROM wh.posts`).Scan(&names))
	require.True(t, strings.HasPrefix(names, "author-0,author-1,"), names)
}
