package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector/config"
	"github.com/appwrite-sync/appwrite-sync/internal/pgtest"
)

// historyConfig is testConfig with postgres.history on for main/posts and a spool.
func historyConfig(t *testing.T, stateURL, warehouseURL, spoolDir string) *config.Config {
	t.Helper()
	ports, err := pgtest.FreePorts(2)
	require.NoError(t, err)
	text := fmt.Sprintf(`
listen: "127.0.0.1:%d"
admin: {listen: "127.0.0.1:%d", token: %q}
webhooks:
  - url: %q
    signing_keys: [%q]
state: {database_url: %q, group_commit_wait: 1ms, spool_dir: %q}
warehouse: {database_url: %q, schema: wh, batch_size: 200}
delivery: {lease: 5s, poll_interval: 20ms, max_backoff: 500ms}
server: {shutdown_timeout: 5s, drain_delay: 0s}
log: {level: warn, format: text}
tables:
  - database: main
    table: posts
    postgres:
      columns: {title: text, views: bigint}
      history: true
`, ports[0], ports[1], testToken, webhookURL, testSecret, stateURL, spoolDir, warehouseURL)
	cfg, err := config.Parse("test.yaml", []byte(text), func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	return cfg
}

// postAs posts e as a delivery of a write by user (X-Appwrite-Webhook-User-Id; "" sends the
// header empty, as Appwrite does for API-key writes) and returns the answer's body.
func postAs(t *testing.T, base, id string, e event, user string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/webhooks/appwrite", bytes.NewReader(e.body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Appwrite-Webhook-Events", e.eventName(id)+",databases.*.tables.*.rows.*."+e.action)
	req.Header.Set("X-Appwrite-Webhook-Signature", sign(webhookURL, e.body))
	req.Header.Set("X-Appwrite-Webhook-User-Id", user)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b)
}

type histEntry struct {
	Op, Title, Source string
	At                time.Time
	Actor, Event      *string
}

func warehouseHistory(t *testing.T, url string) []histEntry {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT op, data->>'title', source, updated_at, actor, event FROM wh.posts_history_changes ORDER BY version_number`)
	if err != nil {
		return nil // not created yet
	}
	defer rows.Close()
	var out []histEntry
	for rows.Next() {
		var e histEntry
		require.NoError(t, rows.Scan(&e.Op, &e.Title, &e.Source, &e.At, &e.Actor, &e.Event))
		e.At = e.At.UTC()
		out = append(out, e)
	}
	require.NoError(t, rows.Err())
	return out
}

func sp(s string) *string { return &s }

// Webhooks taken into the spool while the state store is down keep their acting user and
// event: once it is back and the spool drained, <table>_history holds every distinct version
// (a late one too, a duplicate once) with who wrote it and the event that said so.
func TestHistoryKeepsActorsThroughAnOutageDrain(t *testing.T) {
	stCluster, err := pgtest.StartCluster()
	require.NoError(t, err)
	defer stCluster.Stop()
	state := pgtest.NewDatabaseOn(t, stCluster)
	wh := pgtest.NewDatabase(t)
	in := startInstance(t, historyConfig(t, state, wh, t.TempDir()))
	t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)

	code, _ := postAs(t, in.base, "r1", event{"create", rowBody("r1", t0, "v1", 1, "a")}, "alice")
	require.Equal(t, http.StatusOK, code)
	require.Eventually(t, func() bool { return len(warehouseHistory(t, wh)) == 1 }, 20*time.Second, 20*time.Millisecond)

	stCluster.StopServer()
	for _, p := range []struct {
		e    event
		user string
	}{
		{event{"update", rowBody("r1", t0.Add(2*time.Minute), "v3", 3, "a")}, "bob"},
		{event{"update", rowBody("r1", t0.Add(time.Minute), "v2", 2, "a")}, "carol"}, // late: stale for the ledger
		{event{"update", rowBody("r1", t0.Add(2*time.Minute), "v3", 3, "a")}, "bob"}, // a duplicate
		{event{"delete", rowBody("r1", t0.Add(2*time.Minute), "v3", 3, "a")}, ""},
	} {
		code, body := postAs(t, in.base, "r1", p.e, p.user)
		require.Equal(t, http.StatusOK, code, body)
		require.Contains(t, body, `"spooled"`)
	}
	require.NoError(t, stCluster.Restart())

	ev := func(action string) *string { return sp("databases.main.tables.posts.rows.r1." + action) }
	want := []histEntry{
		{Op: "upsert", Title: "v1", Source: "webhook", At: t0, Actor: sp("alice"), Event: ev("create")},
		{Op: "upsert", Title: "v2", Source: "webhook", At: t0.Add(time.Minute), Actor: sp("carol"), Event: ev("update")},
		{Op: "upsert", Title: "v3", Source: "webhook", At: t0.Add(2 * time.Minute), Actor: sp("bob"), Event: ev("update")},
		{Op: "delete", Title: "v3", Source: "webhook", At: t0.Add(2 * time.Minute), Actor: nil, Event: ev("delete")},
	}
	require.Eventually(t, func() bool { return len(warehouseHistory(t, wh)) >= len(want) }, 30*time.Second, 20*time.Millisecond)
	waitDrained(t, state, 20*time.Second)
	require.Equal(t, want, warehouseHistory(t, wh))
	_, m := adminGet(t, in, "/metrics")
	require.Contains(t, m, `appwrite_sync_history_kept_total{table="main/posts"} 4`)
}
