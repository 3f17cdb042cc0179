package main

import (
	"bytes"
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

	"github.com/appwrite-sync/appwrite-sync/internal/pgtest"
	"github.com/appwrite-sync/appwrite-sync/migrations"
)

// TestAuditCrashKeepsTheLogExact kills the real binary with SIGKILL while user events and row
// changes of a mapped table are audited, twice, and restarts it: every acknowledged event is in
// the warehouse's audit_log exactly once (redelivered after the restart too), no event twice,
// every acknowledged row change is in the ledger, and the chain verifies. A row change's entry
// is committed by the ledger's recorder, a user event's by the audit log's own.
func TestAuditCrashKeepsTheLogExact(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds and kills the real binary")
	}
	dir := t.TempDir()
	bin := buildBinary(t)
	state := pgtest.NewMigratedDatabase(t, migrations.Up)
	ports, err := pgtest.FreePorts(1)
	require.NoError(t, err)
	listen := fmt.Sprintf("127.0.0.1:%d", ports[0])
	cfgPath := filepath.Join(dir, "config.yaml")
	writeBinaryConfig(t, cfgPath, listen, state, `log: {level: warn, format: json}
server: {drain_delay: 0s}
audit: {events: ["users.*", "databases.*.tables.*.rows.*"]}`)
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "serve", "--config", cfgPath)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		require.NoError(t, cmd.Start())
		return cmd
	}
	base := "http://" + listen
	// Odd n: a user event (audit log only); even n: a new row of main/posts.
	userBody := func(n int) []byte {
		if n%2 == 0 {
			return kibRow(fmt.Sprintf("r%d", n), n)
		}
		return []byte(fmt.Sprintf(`{"$id":"u%d","name":"user %d"}`, n, n))
	}
	userEvents := func(n int) string {
		if n%2 == 0 {
			return fmt.Sprintf("databases.main.tables.posts.rows.r%d.create", n) + benchEventsSuffix
		}
		return fmt.Sprintf("users.u%d.create,users.*.create,users.u%d,users.*", n, n)
	}
	id := func(n int) string {
		if n%2 == 0 {
			return fmt.Sprintf("r%d", n)
		}
		return fmt.Sprintf("u%d", n)
	}
	var mu sync.Mutex
	acked := map[int]bool{}
	next := 0
	for round := 0; round < 2; round++ {
		cmd := start()
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					mu.Lock()
					next++
					n := next
					mu.Unlock()
					if status, _ := postEventsQuiet(base, userEvents(n), userBody(n)); status == 200 {
						mu.Lock()
						acked[n] = true
						mu.Unlock()
					}
				}
			}()
		}
		time.Sleep(700 * time.Millisecond)
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		_ = cmd.Wait()
		close(stop)
		wg.Wait()
	}
	require.NotEmpty(t, acked)
	cmd := start()
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()
	// Redeliver a few acknowledged events: still once each.
	redelivered := 0
	for n := range acked {
		if redelivered == 5 {
			break
		}
		require.Eventually(t, func() bool { s, _ := postEventsQuiet(base, userEvents(n), userBody(n)); return s == 200 }, 10*time.Second, 20*time.Millisecond)
		redelivered++
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, state)
	require.NoError(t, err)
	defer conn.Close(ctx)
	require.Eventually(t, func() bool {
		var inState, delivered int64
		err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM appwrite_sync.audit_log), (SELECT head_seq FROM appwrite_sync.audit_delivery)`).Scan(&inState, &delivered)
		return err == nil && inState == delivered && delivered > 0
	}, 30*time.Second, 50*time.Millisecond)
	var total, distinct int64
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*), count(DISTINCT payload->>'$id') FROM wh.audit_log`).Scan(&total, &distinct))
	require.Equal(t, total, distinct, "an event is in the audit log twice")
	rows, err := conn.Query(ctx, `SELECT payload->>'$id' FROM wh.audit_log`)
	require.NoError(t, err)
	have := map[string]bool{}
	for rows.Next() {
		var id string
		require.NoError(t, rows.Scan(&id))
		have[id] = true
	}
	require.NoError(t, rows.Err())
	inLedger := map[string]bool{}
	rows, err = conn.Query(ctx, `SELECT row_id FROM appwrite_sync.ledger`)
	require.NoError(t, err)
	for rows.Next() {
		var id string
		require.NoError(t, rows.Scan(&id))
		inLedger[id] = true
	}
	require.NoError(t, rows.Err())
	rowsAcked := 0
	for n := range acked {
		require.True(t, have[id(n)], "acknowledged event %s is not in the audit log", id(n))
		if n%2 == 0 {
			rowsAcked++
			require.True(t, inLedger[id(n)], "acknowledged row change %s is not in the ledger", id(n))
		}
	}
	require.NotZero(t, rowsAcked)
	code, out := runCLI("audit", "verify", "--config", cfgPath)
	require.Equal(t, exitOK, code, out)
	require.Contains(t, out, fmt.Sprintf("intact: %d entries", total))
	t.Logf("%d events (%d row changes) acknowledged across 2 kills, %d in the audit log, chain intact", len(acked), rowsAcked, total)
}

// postEventsQuiet is postEvents for goroutines: errors are a status of 0.
func postEventsQuiet(base, events string, body []byte) (int, error) {
	req, err := http.NewRequest(http.MethodPost, base+"/webhooks/appwrite", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Appwrite-Webhook-Events", events)
	req.Header.Set("X-Appwrite-Webhook-Signature", sign(webhookURL, body))
	client := http.Client{Timeout: 5 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
