package main

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/connector/ledger"
	"github.com/appwrite-sync/appwrite-sync/connector/sink/pgsink"
	"github.com/appwrite-sync/appwrite-sync/internal/pgtest"
	"github.com/appwrite-sync/appwrite-sync/mapping"
	"github.com/appwrite-sync/appwrite-sync/migrations"
)

// benchEventsSuffix is the part of a row event's events header that names no row: the
// wildcard variants Appwrite lists after the fully qualified event (a subset of its 22).
const benchEventsSuffix = ",databases.*.tables.*.rows.*.create,databases.main.tables.*.rows.*.create,databases.*.tables.posts.rows.*.create," +
	"databases.main.tables.posts.rows.*.create,databases.*.tables.*.rows.*,databases.main.tables.posts.rows.*,databases.*.tables.*," +
	"databases.main.tables.posts,databases.*,databases.main"

// TestBenchIngestAudit is the cost of the audit log (issue 19 item 5): the ingest benchmark's
// durable ingest with and without audit.events covering its row events, side by side in
// alternating slices (BENCH_ROUNDS, default 4, of BENCH_DURATION / rounds each), 64 concurrent,
// the shipped defaults. Goal: audited ≥ 0.8× of plain.
func TestBenchIngestAudit(t *testing.T) {
	if os.Getenv("APPWRITE_SYNC_BENCH") == "" {
		t.Skip("set APPWRITE_SYNC_BENCH=1 (make bench)")
	}
	dur := benchDuration()
	rounds := benchRounds()
	slice := dur / time.Duration(rounds)
	plain, plainState := auditBenchInstance(t, false, false)
	audited, auditState := auditBenchInstance(t, true, false)
	var p, a loadResult
	var ratios []string
	for r := 0; r < rounds; r++ {
		res, _ := loadProcSpec(t, loadSpec{Base: plain.base, Prefix: fmt.Sprintf("p%d-", r), Conc: 64, Dur: slice, EventsSuffix: benchEventsSuffix})
		p.add(res)
		waitDrained(t, plainState, 5*time.Minute)
		res2, _ := loadProcSpec(t, loadSpec{Base: audited.base, Prefix: fmt.Sprintf("a%d-", r), Conc: 64, Dur: slice, EventsSuffix: benchEventsSuffix})
		a.add(res2)
		waitDrained(t, auditState, 5*time.Minute)
		ratios = append(ratios, fmt.Sprintf("%.2f", res2.rps()/res.rps()))
	}
	// Every acknowledged webhook of the audited side is in the warehouse's audit_log, chained.
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, auditState)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var entries int64
	require.Eventually(t, func() bool {
		return conn.QueryRow(ctx, `SELECT count(*) FROM wh.audit_log`).Scan(&entries) == nil && entries >= a.n
	}, 5*time.Minute, 100*time.Millisecond)
	path := writeAuditVerifyConfig(t, auditState)
	code, out := runCLI("audit", "verify", "--config", path)
	require.Equal(t, exitOK, code, out)
	report := fmt.Sprintf(`| audit log cost (%s per side, alternating in %d slices, 64 concurrent, 1 KiB rows, events header with 10 wildcard variants, default config) | value |
|---|---|
| durable ingest without audit | %.0f req/s (p99 %s, errors %d) |
| durable ingest with audit.events covering every row event | %.0f req/s (p99 %s, errors %d) |
| ratio audited / plain | %.2f× (goal ≥ 0.8×); per slice: %s |
| audit_log entries / acknowledged | %d / %d |
`, dur, rounds, p.rps(), pct(p.lat, .99), p.errs, a.rps(), pct(a.lat, .99), a.errs, a.rps()/p.rps(), strings.Join(ratios, " / "), entries, a.n)
	appendReport(t, report)
	require.Zero(t, p.errs)
	require.Zero(t, a.errs)
}

// auditBenchConfig is audit.events covering every row event of the benchmarks' load.
const auditBenchConfig = `audit: {events: ["databases.*.tables.*.rows.*"]}`

// auditBenchInstance is one service of the audit benchmarks: its own state store (which is also
// its warehouse), the shipped defaults, the audit log and postgres.history of main/posts on or
// off.
func auditBenchInstance(t *testing.T, audited, history bool) (*instance, string) {
	t.Helper()
	extra := ""
	if audited {
		extra = auditBenchConfig
	}
	state := pgtest.NewMigratedDatabase(t, migrations.Up)
	cfg := testConfig(t, state, state, extra)
	cfg.State.GroupCommitWait = ledger.MaxWaitDefault
	cfg.Warehouse.BatchSize = pgsink.BatchSizeDefault
	cfg.Delivery.PollInterval, cfg.Delivery.Lease = ledger.PollIntervalDefault, ledger.LeaseDefault
	if history {
		cfg.Mapping.Lookup(connector.TableKey{Database: "main", Table: "posts"}).PG.History = &mapping.History{}
	}
	return startInstance(t, cfg), state
}

// TestBenchIngestAuditHistory is issue 19 item 5 as stated: durable ingest with the row history
// and the audit log both on for the benchmark's table, against the same service with neither,
// side by side in alternating slices (BENCH_ROUNDS, default 4, of BENCH_DURATION / rounds
// each), 64 concurrent, each a new row, the shipped defaults; each slice is followed by
// draining its sinks, history and audit log so no delivery spills into the next one. Goal:
// both ≥ 0.8× of neither.
func TestBenchIngestAuditHistory(t *testing.T) {
	if os.Getenv("APPWRITE_SYNC_BENCH") == "" {
		t.Skip("set APPWRITE_SYNC_BENCH=1 (make bench)")
	}
	dur := benchDuration()
	rounds := benchRounds()
	slice := dur / time.Duration(rounds)
	plain, plainState := auditBenchInstance(t, false, false)
	both, bothState := auditBenchInstance(t, true, true)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, bothState)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var p, a loadResult
	var ratios []string
	entries := func() int64 {
		var n int64
		require.Eventually(t, func() bool {
			var state int64
			err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM appwrite_sync.audit_log), (SELECT count(*) FROM wh.audit_log)`).Scan(&state, &n)
			return err == nil && state == n
		}, 5*time.Minute, 100*time.Millisecond)
		return n
	}
	// The service's CPU and the WAL Postgres wrote, per request, over each slice and its drain
	// (the delivery of what it recorded: the history and audit log are copied after the 200).
	// Both services share one cluster, and only one runs at a time. (Postgres's CPU is not
	// reported: cpuTicks misses the backends that exit within the slice.)
	var cpuP, cpuB, walP, walB int64
	lsn := func() int64 {
		var n int64
		require.NoError(t, conn.QueryRow(ctx, `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint`).Scan(&n))
		return n
	}
	// BENCH_PGSS=1: the statements of the both-on service's database (its state store and
	// warehouse) over its slices and drains; BENCH_CPUPROFILE: a CPU profile of this process
	// (the services; the load generator runs in its own) over the first both-on slice and drain.
	pgss := resetStatements(t, conn)
	for r := 0; r < rounds; r++ {
		s0, w0 := cpuTicksOnly(), lsn()
		res, _ := loadProcSpec(t, loadSpec{Base: plain.base, Prefix: fmt.Sprintf("p%d-", r), Conc: 64, Dur: slice, EventsSuffix: benchEventsSuffix})
		p.add(res)
		waitDrained(t, plainState, 5*time.Minute)
		s1, w1 := cpuTicksOnly(), lsn()
		if out := os.Getenv("BENCH_CPUPROFILE"); out != "" && r == 0 {
			f, err := os.Create(out)
			require.NoError(t, err)
			require.NoError(t, pprof.StartCPUProfile(f))
			t.Cleanup(func() { f.Close() })
		}
		res2, _ := loadProcSpec(t, loadSpec{Base: both.base, Prefix: fmt.Sprintf("b%d-", r), Conc: 64, Dur: slice, EventsSuffix: benchEventsSuffix})
		a.add(res2)
		waitDrained(t, bothState, 5*time.Minute)
		waitHistoryDelivered(t, bothState)
		entries()
		pprof.StopCPUProfile()
		s2, w2 := cpuTicksOnly(), lsn()
		cpuP, cpuB, walP, walB = cpuP+s1-s0, cpuB+s2-s1, walP+w1-w0, walB+w2-w1
		ratios = append(ratios, fmt.Sprintf("%.2f", res2.rps()/res.rps()))
	}
	tick := func(ticks int64, n int64) float64 { return float64(ticks) * 10_000 / float64(n) } // µs per request, USER_HZ 100
	kept, logged := waitHistoryDelivered(t, bothState), entries()
	code, out := runCLI("audit", "verify", "--config", writeAuditVerifyConfig(t, bothState))
	require.Equal(t, exitOK, code, out)
	report := fmt.Sprintf(`| row history + audit log cost (%s per side, alternating in %d slices, 64 concurrent, 1 KiB rows, each a new row, events header with 10 wildcard variants, default config, warehouse in the state store) | value |
|---|---|
| durable ingest with neither | %.0f req/s (p99 %s, errors %d) |
| durable ingest with postgres.history: true and audit.events covering every row event | %.0f req/s (p99 %s, errors %d) |
| ratio both / neither | %.2f× (goal ≥ 0.8×); per slice: %s |
| per request, slice and drain, neither / both: service CPU; WAL written | %.0f µs / %.0f µs; %.0f B / %.0f B |
| versions in posts_history / audit_log entries / acknowledged | %d / %d / %d |
`, dur, rounds, p.rps(), pct(p.lat, .99), p.errs, a.rps(), pct(a.lat, .99), a.errs, a.rps()/p.rps(), strings.Join(ratios, " / "),
		tick(cpuP, p.n), tick(cpuB, a.n), float64(walP)/float64(p.n), float64(walB)/float64(a.n), kept, logged, a.n)
	appendReport(t, report+statementsReport(t, conn, pgss, int(a.n), "the both-on service's slices and drains", "request"))
	require.Zero(t, p.errs)
	require.Zero(t, a.errs)
	require.Equal(t, a.n, kept, "every acknowledged change is one version in the history")
	require.Equal(t, a.n, logged, "every acknowledged webhook is one audit log entry")
}

// writeAuditVerifyConfig writes a config with which `audit verify` reads wh.audit_log of state.
func writeAuditVerifyConfig(t *testing.T, state string) string {
	t.Helper()
	path := t.TempDir() + "/verify.yaml"
	writeBinaryConfig(t, path, "127.0.0.1:0", state, auditBenchConfig)
	return path
}

// cpuTicksOnly is the service's (this process's) CPU ticks.
func cpuTicksOnly() int64 {
	self, _ := cpuTicks()
	return self
}
