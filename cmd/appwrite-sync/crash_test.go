package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/internal/pgtest"
	"github.com/appwrite-sync/appwrite-sync/migrations"
)

// TestCrashLosesNothingAcknowledged builds the real binary, drives webhook load at it, kills
// it with SIGKILL mid-flight several times and restarts it; every change that got a 2xx must
// be in the warehouse at the end.
func TestCrashLosesNothingAcknowledged(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds and kills the real binary")
	}
	dir := t.TempDir()
	bin := buildBinary(t)

	state := pgtest.NewMigratedDatabase(t, migrations.Up)
	cfg := testConfig(t, state, state, "")
	cfgPath := filepath.Join(dir, "config.yaml")
	writeBinaryConfig(t, cfgPath, cfg.Listen, state, `delivery: {lease: 2s, poll_interval: 20ms, max_backoff: 200ms}
log: {level: warn, format: json}
server: {drain_delay: 0s}`)

	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "serve", "--config", cfgPath)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		require.NoError(t, cmd.Start())
		return cmd
	}
	base := "http://" + cfg.Listen
	acked := map[string]histEvent{}
	for _, e := range killRounds(t, base, 4, start) {
		if w, ok := acked[e.id]; !ok || e.version.Compare(w.version) > 0 {
			acked[e.id] = e
		}
	}
	require.NotEmpty(t, acked)
	cmd := start()
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()
	waitDrained(t, state, 60*time.Second)
	got := warehouseRows(t, state)
	for id, e := range acked {
		g, ok := got[id]
		require.True(t, ok, "acknowledged row %s missing", id)
		// The warehouse may hold a newer version (a request can commit and still lose its
		// answer to the kill), never an older one.
		require.GreaterOrEqual(t, g.Views, e.views, "row %s went backwards", id)
	}
	t.Logf("%d rows acknowledged across 4 kills, all present", len(acked))
}

// killRounds starts the service rounds times, drives webhook load at it from 8 workers (300
// rows, each version newer than the last) and kills it with SIGKILL after 700 ms; it returns
// every change that got a 200.
func killRounds(t *testing.T, base string, rounds int, start func() *exec.Cmd) []histEvent {
	t.Helper()
	var acked []histEvent
	var mu sync.Mutex
	t0 := time.Date(2026, 3, 26, 10, 0, 0, 0, time.UTC)
	seq := 0
	for round := 0; round < rounds; round++ {
		cmd := start()
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := 0; w < 8; w++ {
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
					seq++
					n := seq
					mu.Unlock()
					id := fmt.Sprintf("r%d", n%300) // rows get updated several times across rounds
					e := mkEvent(id, "update", t0.Add(time.Duration(n)*time.Millisecond), fmt.Sprintf("v%d", n), int64(n), "a")
					if post(t, base, id, e.event) == 200 {
						mu.Lock()
						acked = append(acked, e)
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
	return acked
}
