package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/connector/ledger"
	"github.com/appwrite-sync/appwrite-sync/connector/sink/meilisink"
	"github.com/appwrite-sync/appwrite-sync/internal/meilitest"
	"github.com/appwrite-sync/appwrite-sync/internal/pgtest"
	"github.com/appwrite-sync/appwrite-sync/migrations"
)

// The Meilisearch benchmarks of the sink issue. Run with APPWRITE_SYNC_BENCH=1 (make bench);
// BENCH_DURATION sets the freshness run (default 20 s), BENCH_ROWS the backlog (default
// 1,000,000), BENCH_MEILI_BATCH the backlog's meilisearch.batch_size (default the config's),
// BENCH_REPORT the markdown file the tables are appended to.

// appendReport logs a benchmark's markdown table and appends it to BENCH_REPORT when set,
// under a line naming the durability the state store's cluster ran with (pgtest.Options:
// production durability unless BENCH_FSYNC=off; BENCH_FLUSH_DELAY simulates a slower disk).
func appendReport(t *testing.T, report string) {
	d, err := pgtest.Durability(context.Background(), os.Getenv(pgtest.EnvURL))
	require.NoError(t, err)
	report = fmt.Sprintf("State store Postgres: %s.\n\n%s", d, report)
	t.Log("\n" + report)
	if p := os.Getenv("BENCH_REPORT"); p != "" {
		f, err := os.OpenFile(p, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		require.NoError(t, err)
		_, err = f.WriteString(report + "\n")
		require.NoError(t, err)
		require.NoError(t, f.Close())
	}
}

// TestBenchMeiliFreshness: 2,000 changes/s through the webhook handler; for each acknowledged
// row, the time from its 200 to the end of the Meilisearch task that wrote it, with the double
// taking 2 ms per task. Goal: p99 ≤ 300 ms.
func TestBenchMeiliFreshness(t *testing.T) {
	if os.Getenv("APPWRITE_SYNC_BENCH") == "" {
		t.Skip("set APPWRITE_SYNC_BENCH=1 (make bench)")
	}
	dur := benchDuration()
	state := pgtest.NewDatabase(t)
	d := newMeili(t, meilitest.Options{TaskDelay: 2 * time.Millisecond})
	d.track.Store(true)
	in := startInstance(t, meiliConfig(t, state, state, d.url, meiliOpts{NoWarehouse: true}))
	steady := load(in.base, 64, dur, 2000, "f", true)
	waitDrained(t, state, 2*time.Minute)

	var fresh []time.Duration
	missing := 0
	for id, ack := range steady.acked {
		at, ok := d.appliedAt(id)
		if !ok {
			missing++
			continue
		}
		fresh = append(fresh, max(0, at.Sub(ack)))
	}
	c := d.srv.Counters()
	tasks := c.TasksByType[meilitest.TaskDocumentAdditionOrUpdate]
	report := fmt.Sprintf(`| Meilisearch freshness (%s at 2,000 changes/s, double: 2 ms per task, %d CPUs) | value |
|---|---|
| achieved rate | %.0f changes/s |
| freshness 200 → task succeeded, p50 / p99 (%d rows) | %s / %s (goal p99 ≤ 300 ms) |
| addition tasks / documents per task | %d / %.1f |
| task polls (GET /tasks?uids=…) | %d |
`, dur, runtime.NumCPU(), steady.rps(), len(fresh), pct(fresh, .5), pct(fresh, .99),
		tasks, float64(c.DocumentsReceived)/float64(max(1, tasks)), c.RequestsByRoute["GET /tasks"])
	appendReport(t, report)
	require.Zero(t, missing, "every acknowledged row must be in the index")
	require.NotEmpty(t, fresh)
}

// TestBenchMeiliBacklog: a backlog of BENCH_ROWS rows recorded straight into the ledger while
// Meilisearch is down, then drained into the double by the engine once it is back: rows/s and
// tasks used. Goals: ≥ 30,000 rows/s,
// ≤ 1 task per 1,000 rows.
func TestBenchMeiliBacklog(t *testing.T) {
	if os.Getenv("APPWRITE_SYNC_BENCH") == "" {
		t.Skip("set APPWRITE_SYNC_BENCH=1 (make bench)")
	}
	n := benchRows()
	ctx := context.Background()
	state := pgtest.NewDatabase(t)
	_, err := migrations.Up(ctx, state)
	require.NoError(t, err)
	pool, err := ledger.OpenLogPool(ctx, state, 8) // the recorder's pool, as serve opens it
	require.NoError(t, err)
	defer pool.Close()
	// Meilisearch is down while the backlog builds (the sink cannot start), then comes back.
	d := newMeili(t, meilitest.Options{})
	d.down.Store(true)
	batch := meilisink.BatchSizeDefault
	if b, err := strconv.Atoi(os.Getenv("BENCH_MEILI_BATCH")); err == nil && b > 0 {
		batch = b
	}
	in := startInstance(t, meiliConfig(t, state, state, d.url, meiliOpts{NoWarehouse: true, Meili: fmt.Sprintf("batch_size: %d", batch),
		Delivery: "{lease: 60s, poll_interval: 20ms, max_backoff: 200ms}"}))
	rec := ledger.NewRecorder(pool, ledger.RecorderOptions{})
	key := connector.TableKey{Database: "main", Table: "posts"}
	base := time.Date(2026, 3, 26, 10, 0, 0, 0, time.UTC)
	t0 := time.Now()
	const page = 5000
	for start := 0; start < n; start += page {
		chs := make([]connector.Change, 0, page)
		for i := start; i < min(n, start+page); i++ {
			id := fmt.Sprintf("bk.%07d", i) // dotted: every id is encoded
			at := base.Add(time.Duration(i) * time.Millisecond)
			chs = append(chs, connector.Change{Key: key, RowID: id, Op: connector.OpUpsert, UpdatedAt: at, Action: "backfill",
				Row: rowBody(id, at, fmt.Sprint("title ", i), int64(i), "ada")})
		}
		_, err := rec.RecordBatch(ctx, chs)
		require.NoError(t, err)
	}
	rec.Close()
	fill := time.Since(t0)
	require.Zero(t, d.srv.DocumentCount("posts"))

	t1 := time.Now()
	d.down.Store(false)
	conn, err := pgx.Connect(ctx, state)
	require.NoError(t, err)
	defer conn.Close(ctx)
	// Watch the double (free) until every document is in, then the ledger until every row is
	// settled: counting a million pending rows every few milliseconds would load the very
	// database the engine drains.
	require.Eventually(t, func() bool { return d.srv.DocumentCount("posts") >= n }, 30*time.Minute, 5*time.Millisecond)
	require.Eventually(t, func() bool {
		var left int64
		return conn.QueryRow(ctx, drainedSQL).Scan(&left) == nil && left == 0
	}, 5*time.Minute, 10*time.Millisecond)
	drain := time.Since(t1)
	claim := histogram(t, in, "appwrite_sync_claim_latency_seconds", `sink="meilisearch"`)
	apply := histogram(t, in, "appwrite_sync_apply_latency_seconds", `sink="meilisearch"`)
	in.stop()

	c := d.srv.Counters()
	tasks := c.TasksByType[meilitest.TaskDocumentAdditionOrUpdate]
	report := fmt.Sprintf(`| Meilisearch backlog (%d rows recorded in the ledger, meilisearch.batch_size %d, %d CPUs) | value |
|---|---|
| ledger fill (RecordBatch, %d per transaction) | %s (%.0f rows/s) |
| drain into the double, from Meilisearch's return | %s |
| throughput | %.0f rows/s (goal ≥ 30,000) |
| addition tasks used | %d (%.2f per 1,000 rows; goal ≤ 1) |
| task polls (GET /tasks?uids=…) | %d |
| engine: claims / mean claim latency | %.0f / %s |
| engine: applies / mean apply latency (project, send, task done) | %.0f / %s |
`, n, batch, runtime.NumCPU(), page, fill.Round(time.Millisecond), float64(n)/fill.Seconds(), drain.Round(time.Millisecond),
		float64(n)/drain.Seconds(), tasks, float64(tasks)*1000/float64(n), c.RequestsByRoute["GET /tasks"],
		claim.count, meanSeconds(claim), apply.count, meanSeconds(apply))
	appendReport(t, report)
	require.Equal(t, n, d.srv.DocumentCount("posts"))
}

func meanSeconds(h histSum) time.Duration {
	return time.Duration(h.mean(histSum{}) * float64(time.Second)).Round(time.Millisecond)
}

// saveProfile fetches a pprof profile from an admin API base URL into out (best effort: a
// benchmark's diagnostics must not fail it).
func saveProfile(adminBase, path, out string) {
	req, _ := http.NewRequest(http.MethodGet, adminBase+path, nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	if f, err := os.Create(out); err == nil {
		_, _ = io.Copy(f, resp.Body)
		_ = f.Close()
	}
}
