package main

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/connector/config"
	"github.com/appwrite-sync/appwrite-sync/connector/ledger"
	"github.com/appwrite-sync/appwrite-sync/connector/sink/pgsink"
	"github.com/appwrite-sync/appwrite-sync/internal/pgtest"
	"github.com/appwrite-sync/appwrite-sync/mapping"
	"github.com/appwrite-sync/appwrite-sync/migrations"
)

// benchInstance is one service of the row history benchmark: its own state store (which is
// also its warehouse), the shipped defaults, and postgres.history on or off for main/posts.
func benchInstance(t *testing.T, history bool) (*instance, string) {
	t.Helper()
	state := pgtest.NewMigratedDatabase(t, migrations.Up)
	cfg := testConfig(t, state, state, "")
	cfg.State.GroupCommitWait = ledger.MaxWaitDefault
	cfg.Warehouse.BatchSize = pgsink.BatchSizeDefault
	cfg.Delivery.PollInterval, cfg.Delivery.Lease = ledger.PollIntervalDefault, ledger.LeaseDefault
	if history {
		cfg.Mapping.Lookup(connector.TableKey{Database: "main", Table: "posts"}).PG.History = &mapping.History{}
	}
	return startInstance(t, cfg), state
}

// waitHistoryDelivered waits until the warehouse's posts_history holds every version the state
// store kept, and returns how many that is.
func waitHistoryDelivered(t *testing.T, state string) int64 {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, state)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var kept, delivered int64
	require.Eventually(t, func() bool {
		err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM appwrite_sync.history), (SELECT count(*) FROM wh.posts_history)`).Scan(&kept, &delivered)
		return err == nil && kept == delivered
	}, 5*time.Minute, 100*time.Millisecond)
	return kept
}

// TestBenchIngestHistory is the cost of the row history (issue 19): durable ingest of the
// ingest benchmark's load (64 concurrent, 1 KiB rows, each a new row) with postgres.history on
// for its table, against the same service without it, measured side by side: the two alternate
// in slices (BENCH_ROUNDS, default 4) of BENCH_DURATION / rounds each, and each slice is
// followed by draining its sinks (and its history) so no delivery spills into the next one.
// Goal: with history ≥ 0.8× of without.
func TestBenchIngestHistory(t *testing.T) {
	if os.Getenv("APPWRITE_SYNC_BENCH") == "" {
		t.Skip("set APPWRITE_SYNC_BENCH=1 (make bench)")
	}
	dur := benchDuration()
	// serve's runtime settings, as TestBenchIngest applies them (both instances run in this
	// process; the generator in its own).
	prevLimit, prevGC := debug.SetMemoryLimit(-1), debug.SetGCPercent(100)
	debug.SetGCPercent(prevGC)
	t.Cleanup(func() { debug.SetMemoryLimit(prevLimit); debug.SetGCPercent(prevGC) })
	_, gc := applyRuntime(config.MemoryLimitDefault)
	t.Logf("runtime: GC %+v", gc)
	off, offState := benchInstance(t, false)
	on, onState := benchInstance(t, true)
	rounds := benchRounds()
	slice := dur / time.Duration(rounds)
	var without, with loadResult
	var ratios []string
	var cpuOff, cpuOn, pgOff, pgOn int64
	for r := 0; r < rounds; r++ {
		s0, p0 := cpuTicks()
		res, _ := loadProc(t, off.base, 64, slice, 0, fmt.Sprintf("o%d-", r), false)
		s1, p1 := cpuTicks()
		without.add(res)
		offRPS := res.rps()
		waitDrained(t, offState, 5*time.Minute)
		s2, p2 := cpuTicks()
		res, _ = loadProc(t, on.base, 64, slice, 0, fmt.Sprintf("h%d-", r), false)
		s3, p3 := cpuTicks()
		with.add(res)
		ratios = append(ratios, fmt.Sprintf("%.2f", res.rps()/offRPS))
		waitDrained(t, onState, 5*time.Minute)
		waitHistoryDelivered(t, onState)
		cpuOff, pgOff, cpuOn, pgOn = cpuOff+s1-s0, pgOff+p1-p0, cpuOn+s3-s2, pgOn+p3-p2
	}
	kept := waitHistoryDelivered(t, onState)
	tick := func(ticks int64, n int64) float64 { return float64(ticks) * 10_000 / float64(n) } // µs per request, USER_HZ 100
	report := fmt.Sprintf(`| row history cost (%s in %d alternating slices, 64 concurrent, 1 KiB rows, each a new row, default config, warehouse in the state store) | value |
|---|---|
| durable ingest without history | %.0f req/s (p99 %s, errors %d) |
| durable ingest with postgres.history: true | %.0f req/s (p99 %s, errors %d) |
| ratio with / without | %.2f× (goal ≥ 0.8×); per slice: %s |
| CPU per request without / with: service / Postgres | %.0f µs / %.0f µs; %.0f µs / %.0f µs |
| versions kept and delivered to posts_history | %d |
`, dur, rounds, without.rps(), pct(without.lat, .99), without.errs, with.rps(), pct(with.lat, .99), with.errs,
		with.rps()/without.rps(), strings.Join(ratios, " / "),
		tick(cpuOff, without.n), tick(pgOff, without.n), tick(cpuOn, with.n), tick(pgOn, with.n), kept)
	appendReport(t, report)
	require.Zero(t, without.errs)
	require.Zero(t, with.errs)
	require.Equal(t, with.n, kept, "every acknowledged change is one version in the history")
}
