package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector/spool"
	"github.com/appwrite-sync/appwrite-sync/internal/pgtest"
)

// TestSpoolSurvivesSIGKILL kills the real binary while the state store is down and the spool
// holds the changes it acknowledged (some appends in flight); the restarted process drains the
// spool into the state store: every change answered 200 is there.
func TestSpoolSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the real binary")
	}
	bin := buildBinary(t)
	stCluster, err := pgtest.StartCluster()
	require.NoError(t, err)
	defer stCluster.Stop()
	state := pgtest.NewDatabaseOn(t, stCluster)
	spoolDir := t.TempDir()
	ports, err := pgtest.FreePorts(2)
	require.NoError(t, err)
	text := fmt.Sprintf(`
listen: "127.0.0.1:%d"
admin: {listen: "127.0.0.1:%d", token: %q}
webhooks:
  - url: %q
    signing_keys: [%q]
state: {database_url: %q, spool_dir: %q, spool_max_bytes: 67108864}
warehouse: {schema: wh}
delivery: {lease: 5s, poll_interval: 20ms, max_backoff: 500ms}
server: {shutdown_timeout: 5s, drain_delay: 0s}
log: {level: warn, format: json}
tables:
  - database: main
    table: posts
    postgres: {table: posts, columns: {title: text, views: bigint, author_name: {from: author.name, type: text}}}
`, ports[0], ports[1], testToken, webhookURL, testSecret, state, spoolDir)
	cfgPath := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(text), 0o600))
	base := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "serve", "--config", cfgPath)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		require.NoError(t, cmd.Start())
		require.Eventually(t, func() bool {
			resp, err := http.Get(base + "/healthz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == 200
		}, 30*time.Second, 20*time.Millisecond)
		return cmd
	}
	cmd := start()
	at := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	require.Equal(t, 200, post(t, base, "before", event{"create", rowBody("before", at, "x", 1, "a")}))
	stCluster.StopServer()

	// Four posters; the process is killed while they post.
	var mu sync.Mutex
	var acked []string
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("k%d-%d", w, i)
				if postQuiet(base, id, event{"create", rowBody(id, at, "spooled", int64(i), "a")}) == http.StatusOK {
					mu.Lock()
					acked = append(acked, id)
					mu.Unlock()
				}
			}
		}()
	}
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(acked) >= 200 }, 30*time.Second, 5*time.Millisecond)
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()
	close(stop)
	wg.Wait()
	fi, err := os.Stat(filepath.Join(spoolDir, spool.FileName))
	require.NoError(t, err)
	require.Greater(t, fi.Size(), int64(1000), "the dead process left its changes in the spool")

	require.NoError(t, stCluster.Restart())
	cmd = start()
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, state)
	require.NoError(t, err)
	defer conn.Close(ctx)
	want := append([]string{"before"}, acked...)
	require.Eventually(t, func() bool {
		var n int
		err := conn.QueryRow(ctx, `SELECT count(*) FROM appwrite_sync.ledger WHERE row_id = ANY($1)`, want).Scan(&n)
		return err == nil && n == len(want)
	}, 30*time.Second, 50*time.Millisecond, "every acknowledged change reaches the state store")
	waitDrained(t, state, 30*time.Second)
	got := warehouseRows(t, state)
	for _, id := range want {
		require.Contains(t, got, id)
	}
	require.Eventually(t, func() bool {
		fi, err := os.Stat(filepath.Join(spoolDir, spool.FileName))
		return err == nil && fi.Size() < 100
	}, 10*time.Second, 20*time.Millisecond, "the drained spool is truncated")
	// Requests the dead process had not answered are lost (Appwrite does not retry them):
	// the table is on the repair list, and status says what to do without the Appwrite API.
	code, body := adminCall(t, fmt.Sprintf("http://127.0.0.1:%d", ports[1]), http.MethodGet, "/admin/status", "")
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, `"refused_since":{"main/posts":`)
	require.Contains(t, body, `run POST /admin/backfill`)
}
