package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector/config"
	"github.com/appwrite-sync/appwrite-sync/internal/pgtest"
	"github.com/appwrite-sync/appwrite-sync/migrations"
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

// warehouseHistory reads the versions of row id in wh.posts_history_changes, in version order.
func warehouseHistory(t *testing.T, url, id string) []histEntry {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT op, data->>'title', source, updated_at, actor, event FROM wh.posts_history_changes WHERE id = $1 ORDER BY version_number`, id)
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
	require.Eventually(t, func() bool { return len(warehouseHistory(t, wh, "r1")) == 1 }, 20*time.Second, 20*time.Millisecond)

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
	require.Eventually(t, func() bool { return len(warehouseHistory(t, wh, "r1")) >= len(want) }, 30*time.Second, 20*time.Millisecond)
	waitDrained(t, state, 20*time.Second)
	require.Equal(t, want, warehouseHistory(t, wh, "r1"))
	_, m := adminGet(t, in, "/metrics")
	require.Contains(t, m, `appwrite_sync_history_kept_total{table="main/posts"} 4`)
}

// A backfill started through the admin API keeps the versions it reads with source backfill
// and no event or actor; a webhook's version of the same row keeps its own.
func TestHistoryOfABackfill(t *testing.T) {
	t.Parallel()
	api := newAppwrite(t)
	t0 := api.Now()
	for i := range 3 {
		putPost(api, fmt.Sprintf("r%d", i), "v1", int64(i), t0)
	}
	state := pgtest.NewDatabase(t)
	text := backfillConfigText(t, state, bfConfig{endpoint: api.URL})
	const missing = "\n  - database: main\n    table: missing"
	require.Contains(t, text, missing)
	in := startInstance(t, parseText(t, strings.Replace(text, missing, "\n      history: true"+missing, 1)))
	// An older version by webhook, as a user wrote it, before the backfill reads the newer one.
	code, _ := postAs(t, in.base, "r0", event{"create", rowBody("r0", t0.Add(-time.Minute), "v0", 0, "Ada")}, "alice")
	require.Equal(t, http.StatusOK, code)
	waitJob(t, in.admin, startJob(t, in.admin, "main/posts", "full"), 20*time.Second)
	waitDrained(t, state, 20*time.Second)

	require.Eventually(t, func() bool { return len(warehouseHistory(t, state, "r0")) == 2 }, 20*time.Second, 20*time.Millisecond)
	byRow := map[string][]histEntry{}
	for _, id := range []string{"r0", "r1", "r2"} {
		byRow[id] = warehouseHistory(t, state, id)
	}
	require.Equal(t, []histEntry{
		{Op: "upsert", Title: "v0", Source: "webhook", At: t0.Add(-time.Minute).UTC().Truncate(time.Millisecond), Actor: sp("alice"), Event: sp("databases.main.tables.posts.rows.r0.create")},
		{Op: "upsert", Title: "v1", Source: "backfill", At: t0.UTC().Truncate(time.Millisecond)},
	}, byRow["r0"])
	for _, id := range []string{"r1", "r2"} {
		require.Equal(t, []histEntry{{Op: "upsert", Title: "v1", Source: "backfill", At: t0.UTC().Truncate(time.Millisecond)}}, byRow[id], id)
	}
}

// The real binary with history on, killed with SIGKILL mid-flight three times and restarted:
// every version that got a 200 is in posts_history exactly once, and every version the state
// store kept reached it (a kill between recording and delivery, or between a batch's write
// and its cursor's move, re-sends without a second row).
func TestCrashKeepsTheHistoryExact(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds and kills the real binary")
	}
	bin := buildBinary(t)
	state := pgtest.NewMigratedDatabase(t, migrations.Up)
	ports, err := pgtest.FreePorts(1)
	require.NoError(t, err)
	listen := fmt.Sprintf("127.0.0.1:%d", ports[0])
	cfgPath := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(fmt.Sprintf(`
listen: %q
admin: {listen: ""}
webhooks:
  - url: %q
    signing_keys: [%q]
state: {database_url: %q}
warehouse: {schema: wh, batch_size: 50}
delivery: {lease: 2s, poll_interval: 20ms, max_backoff: 200ms}
log: {level: warn, format: json}
server: {drain_delay: 0s}
tables:
  - database: main
    table: posts
    postgres:
      columns: {title: text, views: bigint}
      history: true
`, listen, webhookURL, testSecret, state)), 0o600))
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "serve", "--config", cfgPath)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		require.NoError(t, cmd.Start())
		return cmd
	}
	acked := killRounds(t, "http://"+listen, 3, start)
	require.NotEmpty(t, acked)
	cmd := start()
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()
	waitDrained(t, state, 60*time.Second)
	kept := waitHistoryDelivered(t, state)

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, state)
	require.NoError(t, err)
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT id, updated_at, count(*) FROM wh.posts_history GROUP BY 1, 2`)
	require.NoError(t, err)
	type version struct {
		id string
		at int64
	}
	copies := map[version]int{}
	for rows.Next() {
		var id string
		var at time.Time
		var n int
		require.NoError(t, rows.Scan(&id, &at, &n))
		copies[version{id, at.UnixMilli()}] = n
	}
	require.NoError(t, rows.Err())
	for _, e := range acked {
		require.Equal(t, 1, copies[version{e.id, e.version.UpdatedAt.UnixMilli()}], "acknowledged version %s@%s", e.id, e.version.UpdatedAt)
	}
	t.Logf("%d versions acknowledged across 3 kills, %d kept, each in the history once", len(acked), kept)
}
