package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector/appwrite"
	"github.com/appwrite-sync/appwrite-sync/internal/appwritetest"
	"github.com/appwrite-sync/appwrite-sync/internal/meilitest"
	"github.com/appwrite-sync/appwrite-sync/internal/pgtest"
)

// benchAppwriteLatency is the time the Appwrite double takes per request
// (BENCH_APPWRITE_LATENCY, default 0: the double answers as fast as it renders).
func benchAppwriteLatency() time.Duration {
	d, _ := time.ParseDuration(os.Getenv("BENCH_APPWRITE_LATENCY"))
	return d
}

// TestBenchBackfill is the backfill benchmark: BENCH_ROWS (default 1,000,000) rows of about
// 1 KiB from the Appwrite double into both sinks through the real binary (its peak RSS read
// from /proc), until the warehouse and the index hold every row and no Meilisearch task is
// left unconfirmed. In the same run, the baseline does what Appwrite's "sync-with-meilisearch"
// function template does: pages of 100 by cursorAfter, one add-documents call per page,
// sequential, not waiting for the tasks, Meilisearch only.
func TestBenchBackfill(t *testing.T) {
	if os.Getenv("APPWRITE_SYNC_BENCH") == "" {
		t.Skip("set APPWRITE_SYNC_BENCH=1 (make bench)")
	}
	rows := benchRows()
	latency := benchAppwriteLatency()
	bin := buildBinary(t)
	api := appwritetest.New(appwritetest.Options{Start: time.Now().Add(-time.Hour)})
	defer api.Close()
	api.Seed(postsKey, rows, 1024)
	api.SetLatency(latency)

	// appwrite-sync: the real binary, both sinks.
	meili := meilitest.New(meilitest.Options{})
	state := pgtest.NewDatabase(t)
	text := backfillConfigText(t, state, bfConfig{endpoint: api.URL, meili: meili.URL})
	cfgPath := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(text), 0o600))
	adminBase := "http://" + parseText(t, text).Admin.Listen
	cmd := exec.Command(bin, "serve", "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	// BENCH_SERVE_ENV adds variables to the serve process only, e.g. "GOMEMLIMIT=150MiB" or
	// "GODEBUG=gctrace=1".
	serveEnv := strings.Fields(os.Getenv("BENCH_SERVE_ENV"))
	cmd.Env = append(os.Environ(), serveEnv...)
	require.NoError(t, cmd.Start())
	defer func() { _ = cmd.Process.Signal(syscall.SIGKILL); _ = cmd.Wait() }()
	require.Eventually(t, func() bool {
		code, _ := adminCall(t, adminBase, http.MethodGet, "/admin/backfill", "")
		return code == http.StatusOK
	}, 30*time.Second, 50*time.Millisecond)

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, state)
	require.NoError(t, err)
	defer conn.Close(ctx)
	pgss := resetStatements(t, conn)
	self0, pg0, serve0 := cpuTicksOf(cmd.Process.Pid)
	wal0 := readWAL(t, conn)
	start := time.Now()
	id := startJob(t, adminBase, "main/posts", "full")
	if out, at := os.Getenv("BENCH_HEAPPROFILE_MID"), benchDurationEnv("BENCH_HEAPPROFILE_AT", 30*time.Second); out != "" {
		// The serve process's heap while it backfills (BENCH_HEAPPROFILE is taken at the end).
		go func() { time.Sleep(at); saveProfile(adminBase, "/debug/pprof/heap", out) }()
	}
	if out := os.Getenv("BENCH_CPUPROFILE"); out != "" {
		// 10 s of the serve process's CPU profile, taken while it backfills.
		go saveProfile(adminBase, "/debug/pprof/profile?seconds=10", out)
	}
	var job jobView
	var scanned time.Duration
	for {
		var ok bool
		job, ok = getJob(t, adminBase, id)
		require.True(t, ok)
		require.NotEqual(t, "failed", job.State, job.Error)
		if job.State == "succeeded" && scanned == 0 {
			scanned = time.Since(start)
		}
		// Only once the scan is done and the index is complete (free to ask) is the state store
		// polled, with index probes; the warehouse is counted once, when the log is drained.
		if job.State == "succeeded" && meili.DocumentCount("posts") == rows {
			var pending int
			var inWarehouse int
			if conn.QueryRow(ctx, drainedSQL).Scan(&pending) == nil && pending == 0 &&
				conn.QueryRow(ctx, `SELECT count(*) FROM wh.posts`).Scan(&inWarehouse) == nil && inWarehouse == rows {
				break
			}
		}
		require.Less(t, time.Since(start), time.Hour, "not done after an hour")
		time.Sleep(200 * time.Millisecond)
	}
	elapsed := time.Since(start)
	self1, pg1, serve1 := cpuTicksOf(cmd.Process.Pid)
	wal1 := readWAL(t, conn)
	statements := statementsReport(t, conn, pgss, rows, "the first backfill", "backfilled row")
	peakKiB := procKiB(cmd.Process.Pid, "VmHWM")
	if out := os.Getenv("BENCH_HEAPPROFILE"); out != "" {
		saveProfile(adminBase, "/debug/pprof/heap", out)
	}
	// The same full backfill again, as a scheduled or manual reconcile runs it: the ledger
	// holds every row already, so each one is a duplicate and nothing reaches the sinks. A
	// reconcile comes long after the backfill, past a checkpoint or several: after one, the
	// first write to each page puts the whole page in the WAL (full_page_writes).
	if _, err := conn.Exec(ctx, "CHECKPOINT"); err != nil {
		t.Logf("CHECKPOINT before the repeated backfill: %v", err)
	}
	rwal0 := readWAL(t, conn)
	rstart := time.Now()
	rjob := waitJob(t, adminBase, startJob(t, adminBase, "main/posts", "full"), time.Hour)
	rerun := time.Since(rstart)
	rwal := readWAL(t, conn).sub(rwal0)
	require.Equal(t, "succeeded", rjob.State, rjob.Error)
	require.Zero(t, rjob.RowsChanged, "the repeated backfill changed rows")
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()
	meili.Close()

	// The baseline, against a fresh Meilisearch double.
	belapsed, bindexed := runTemplate(t, api, rows)

	rate := float64(rows) / elapsed.Seconds()
	brate := float64(rows) / belapsed.Seconds()
	envNote := ""
	if len(serveEnv) > 0 {
		envNote = ", serve env " + strings.Join(serveEnv, " ")
	}
	report := fmt.Sprintf(`| backfill benchmark (%d rows of ~1 KiB, Appwrite double latency %s per request, %d CPUs%s) | value |
|---|---|
| appwrite-sync full backfill, both sinks, end to end (until the warehouse and the index hold every row, every task confirmed) | %.0f rows/s (%s; scan done after %s; job rate %.0f rows/s) |
| appwrite-sync peak RSS (VmHWM of the serve process) | %.1f MiB (goal ≤ 200 MiB) |
| the same full backfill again, after a CHECKPOINT (every row already in the ledger: all duplicates) | %.0f rows/s (%s) |
| WAL per row (full-page images per row): the backfill / the same again | %s / %s |
| baseline: "sync-with-meilisearch" template (cursorAfter pages of 100, one add-documents per page, no task wait, Meilisearch only) | %.0f rows/s (%s; index complete after %s) |
| ratio appwrite-sync / baseline | %.2f× (goal ≥ 1.0× at 0 ms, ≥ 10× at 100 ms and more) |
| CPU per row during the backfill: serve / Postgres / the two doubles (test process) | %.0f µs / %.0f µs / %.0f µs |

Command: `+"`APPWRITE_SYNC_BENCH=1 BENCH_ROWS=%d BENCH_APPWRITE_LATENCY=%s BENCH_SERVE_ENV=%q go test -count=1 -run TestBenchBackfill -timeout 2h ./cmd/appwrite-sync/`"+`
`, rows, latency, runtime.NumCPU(), envNote, rate, elapsed.Round(time.Second), scanned.Round(time.Second), job.RatePerS,
		float64(peakKiB)/1024, float64(rows)/rerun.Seconds(), rerun.Round(100*time.Millisecond), wal1.sub(wal0).perChange(int64(rows)), rwal.perChange(int64(rows)), brate, belapsed.Round(time.Second), bindexed.Round(time.Second), rate/brate,
		float64(serve1-serve0)*1e4/float64(rows), float64(pg1-pg0)*1e4/float64(rows), float64(self1-self0)*1e4/float64(rows), rows, latency, strings.Join(serveEnv, " "))
	appendReport(t, report+statements)
}

// runTemplate does what Appwrite's "sync-with-meilisearch" function template does, against
// a fresh Meilisearch double: pages of 100 by cursorAfter, one add-documents call per page,
// sequential, not waiting for the tasks, Meilisearch only. It returns the time to send every
// row and the time until the index held them all.
func runTemplate(t *testing.T, api *appwritetest.Server, rows int) (sent, indexed time.Duration) {
	t.Helper()
	ctx := context.Background()
	base := meilitest.New(meilitest.Options{})
	defer base.Close()
	client, err := appwrite.New(appwrite.Options{Endpoint: api.URL, Project: appwritetest.ProjectDefault, APIKey: appwritetest.APIKeyDefault})
	require.NoError(t, err)
	hc := &http.Client{Timeout: time.Minute}
	bstart := time.Now()
	cursor, n := "", 0
	for {
		p, err := client.ListRows(ctx, postsKey, appwrite.ListQuery{Limit: 100, CursorAfter: cursor})
		require.NoError(t, err)
		if len(p.Rows) == 0 {
			break
		}
		var body bytes.Buffer
		body.WriteByte('[')
		for i, r := range p.Rows {
			if i > 0 {
				body.WriteByte(',')
			}
			body.Write(r)
		}
		body.WriteByte(']')
		resp, err := hc.Post(base.URL+"/indexes/baseline/documents?primaryKey=%24id", "application/json", &body)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusAccepted, resp.StatusCode)
		last, _, _, err := appwrite.RowMeta(p.Rows[len(p.Rows)-1])
		require.NoError(t, err)
		cursor = last
		n += len(p.Rows)
	}
	sent = time.Since(bstart)
	require.Equal(t, rows, n)
	require.Eventually(t, func() bool { return base.DocumentCount("baseline") == rows }, 30*time.Minute, 200*time.Millisecond)
	return sent, time.Since(bstart)
}

// resetStatements empties pg_stat_statements when the cluster loads it (BENCH_PGSS=1; see
// pgtest.Options.Statements) and reports whether it does.
func resetStatements(t *testing.T, conn *pgx.Conn) bool {
	t.Helper()
	if os.Getenv(pgtest.EnvStatements) == "" {
		return false
	}
	ctx := context.Background()
	_, err := conn.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
	require.NoError(t, err)
	_, err = conn.Exec(ctx, "SELECT pg_stat_statements_reset()")
	require.NoError(t, err)
	return true
}

// statementsReport is a table of the statements that took the most of Postgres's time since
// resetStatements, per row (or request) of the benchmark: where the state store's time goes.
// what names the measured span and unit, e.g. "the first backfill", "backfilled row".
func statementsReport(t *testing.T, conn *pgx.Conn, on bool, rows int, what, unit string) string {
	t.Helper()
	if !on {
		return ""
	}
	rs, err := conn.Query(context.Background(), `SELECT calls, rows, total_exec_time, total_plan_time, wal_bytes::float8,
            regexp_replace(left(query, 90), '\s+', ' ', 'g')
        FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
        ORDER BY total_exec_time + total_plan_time DESC LIMIT 12`)
	require.NoError(t, err)
	var b strings.Builder
	fmt.Fprintf(&b, "\n| statement (pg_stat_statements, %s) | calls | µs per %s (execution + planning) | WAL bytes per %s |\n|---|---|---|---|\n", what, unit, unit)
	for rs.Next() {
		var calls, n int64
		var exec, plan, wal float64
		var q string
		require.NoError(t, rs.Scan(&calls, &n, &exec, &plan, &wal, &q))
		fmt.Fprintf(&b, "| `%s` | %d | %.1f | %.0f |\n", strings.ReplaceAll(q, "|", "\\|"), calls, (exec+plan)*1000/float64(rows), wal/float64(rows))
	}
	require.NoError(t, rs.Err())
	return b.String()
}

// benchDurationEnv reads a duration from the environment, def when unset or invalid.
func benchDurationEnv(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil && d > 0 {
		return d
	}
	return def
}
