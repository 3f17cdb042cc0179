package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector/appwrite"
	"github.com/appwrite-sync/appwrite-sync/connector/ledger"
	"github.com/appwrite-sync/appwrite-sync/internal/groupcommit"
	"github.com/appwrite-sync/appwrite-sync/internal/pgtest"
)

// TestBenchIngestFloor measures the least work any server that keeps the durable-ingest
// promise must do per webhook on this machine, against the bare handler in the same run: the
// floor that says how far "durable ingest ≥ 0.5× the bare Go handler" is reachable at all.
// Per request the floor server does what the bare one does (read the body, verify the
// signature, answer 200) plus:
//   - read the row's $id and $updatedAt (the key and the order every convergent design needs);
//   - hand the row to a group commit (internal/groupcommit, serve's settings: two groups at
//     once, MaxWait ledger.MaxWaitDefault, groups of up to ledger.MaxBatchDefault);
//   - a group is one statement in its own transaction on the durable cluster: an upsert of
//     (id, updated_at, body) into a table keyed on id, kept only when newer;
//   - answer after the commit.
//
// Nothing else: no content hash, no tombstones, no delivery log or cursor, no delivery to a
// warehouse, no metrics, no logging, no gin. A second floor server adds the least a warehouse
// costs: each group also upserts its rows, unprojected, into a second table in the same
// transaction (appwrite-sync delivers after the commit, reading the log back and projecting
// the columns: more work than this). The generator, concurrency and row are the ingest
// benchmark's; the bare server and the two floors alternate in BENCH_ROUNDS slices.
func TestBenchIngestFloor(t *testing.T) {
	if os.Getenv("APPWRITE_SYNC_BENCH") == "" {
		t.Skip("set APPWRITE_SYNC_BENCH=1 (make bench)")
	}
	dur := benchDuration()
	load0 := loadAverage()
	ctx := context.Background()
	pool := floorDatabase(t)
	floor := floorServer(t, pool, floorUpsert("floor_rows"))
	floorWH := floorServer(t, pool, floorUpsert("floor_rows"), floorUpsert("floor_warehouse"))
	bare := baselineServer(t)

	rounds := benchRounds()
	slice := dur / time.Duration(rounds)
	var base, fl, flWH loadResult
	var cpu struct{ genBase, bare, genFloor, floor, pg time.Duration }
	tick := func(ticks int64) time.Duration { return time.Duration(ticks) * 10 * time.Millisecond } // USER_HZ 100
	var ratios, ratiosWH []string
	var walFloor walStats
	for r := 0; r < rounds; r++ {
		b0, _ := cpuTicks()
		res, gen := loadProc(t, bare, 64, slice, 0, fmt.Sprintf("b%d-", r), false)
		b1, _ := cpuTicks()
		base.add(res)
		cpu.genBase, cpu.bare = cpu.genBase+gen, cpu.bare+tick(b1-b0)
		baseRPS := res.rps()

		w0 := readWAL(t, pool)
		f0, pg0 := cpuTicks()
		res, gen = loadProc(t, floor, 64, slice, 0, fmt.Sprintf("f%d-", r), false)
		f1, pg1 := cpuTicks()
		walFloor = walFloor.add(readWAL(t, pool).sub(w0))
		fl.add(res)
		require.Zero(t, res.errs, "the floor server answered errors")
		cpu.genFloor, cpu.floor, cpu.pg = cpu.genFloor+gen, cpu.floor+tick(f1-f0), cpu.pg+tick(pg1-pg0)
		ratios = append(ratios, fmt.Sprintf("%.2f", res.rps()/baseRPS))

		res, _ = loadProc(t, floorWH, 64, slice, 0, fmt.Sprintf("w%d-", r), false)
		flWH.add(res)
		require.Zero(t, res.errs, "the floor server with the warehouse write answered errors")
		ratiosWH = append(ratiosWH, fmt.Sprintf("%.2f", res.rps()/baseRPS))
	}
	var stored, inWarehouse int64
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*), (SELECT count(*) FROM floor_warehouse) FROM floor_rows`).Scan(&stored, &inWarehouse))
	require.Equal(t, fl.n+flWH.n, stored, "every acknowledged row is stored")
	require.Equal(t, flWH.n, inWarehouse, "every acknowledged row of the second floor is in its warehouse table")
	per := func(d time.Duration, n int64) float64 { return float64(d.Microseconds()) / float64(n) }
	report := fmt.Sprintf(`| ingest floor (%s per phase in %d slices, 64 concurrent, 1 KiB rows, generator in its own process, %d CPUs) | value |
|---|---|
| baseline: bare net/http, verify only | %.0f req/s |
| floor: verify, read $id and $updatedAt, group-committed durable upsert keyed on id (two groups at once), 200 after the commit | %.0f req/s, 0 errors |
| ratio floor / baseline | %.2f×; per slice: %s |
| floor with a warehouse write: the same, plus the row (id, updated_at, body; no projection) upserted into a second table in the same transaction | %.0f req/s, 0 errors; ratio %.2f×; per slice: %s |
| CPU per request, baseline: generator / bare server | %.0f µs / %.0f µs |
| CPU per request, floor: generator / floor server / Postgres | %.0f µs / %.0f µs / %.0f µs |
| WAL per request, floor | %s |
| machine load average at the start / the end | %s / %s |

Command: `+"`APPWRITE_SYNC_BENCH=1 BENCH_DURATION=%s go test -count=1 -run 'TestBenchIngestFloor$' ./cmd/appwrite-sync/`"+`
`, dur, rounds, runtime.NumCPU(), base.rps(), fl.rps(), fl.rps()/base.rps(), strings.Join(ratios, " / "),
		flWH.rps(), flWH.rps()/base.rps(), strings.Join(ratiosWH, " / "),
		per(cpu.genBase, base.n), per(cpu.bare, base.n), per(cpu.genFloor, fl.n), per(cpu.floor, fl.n), per(cpu.pg, fl.n),
		walFloor.perChange(fl.n), load0, loadAverage(), dur)
	appendReport(t, report)
}

// floorServer is the floor benchmarks' server: each group runs statements, in one implicit
// transaction (one pipeline), each with the group's ids ($1), updated-at times ($2) and
// bodies ($3).
func floorServer(t *testing.T, pool *pgxpool.Pool, statements ...string) string {
	type floorReq struct {
		id   string
		at   time.Time
		body string
	}
	group := groupcommit.New(groupcommit.Options[*floorReq]{
		Commit: func(ctx context.Context, batch []*floorReq) error {
			ids, ats, bodies := make([]string, len(batch)), make([]time.Time, len(batch)), make([]string, len(batch))
			for i, q := range batch {
				ids[i], ats[i], bodies[i] = q.id, q.at, q.body
			}
			b := &pgx.Batch{}
			for _, sql := range statements {
				b.Queue(sql, ids, ats, bodies)
			}
			return pool.SendBatch(ctx, b).Close()
		},
		Refused: ledger.ErrUnavailable, MaxWait: ledger.MaxWaitDefault, MaxBatch: ledger.MaxBatchDefault,
		Committers: 2, Timeout: 10 * time.Second,
	})
	t.Cleanup(group.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := verifiedBody(w, r)
		if !ok {
			return
		}
		id, at, _, err := appwrite.RowMeta(body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if err := group.Do(r.Context(), &floorReq{id: id, at: at, body: string(body)}); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte(`{"recorded":true,"result":"new"}`))
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// floorUpsert is the floor's statement: the rows of a group, each kept only when newer.
func floorUpsert(table string) string {
	return fmt.Sprintf(`INSERT INTO %[1]s (id, updated_at, body)
SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::text[])
ON CONFLICT (id) DO UPDATE SET updated_at = excluded.updated_at, body = excluded.body
WHERE %[1]s.updated_at < excluded.updated_at`, table)
}

// TestBenchIngestFloorAuditHistory is the floor of issue #19's cost goal: what keeping every
// version and every event must add, at the least, to the floor with a warehouse write of
// TestBenchIngestFloor, alternating with it in the same run. Each group also:
//   - appends every row (id, updated_at, body) to a state-store log, before the 200: one copy
//     of the body serves both the versions and the audit entries (appwrite-sync writes two);
//   - inserts a history row (id, updated_at; appwrite-sync adds the projected data as jsonb,
//     the version hash, actor, event and source) into a warehouse table;
//   - inserts the body as jsonb into a warehouse audit table (appwrite-sync adds the chain's
//     hashes, the events and the ids).
//
// Nothing dedupes and nothing is hashed; all in the same transaction as the record, so no log
// is read back. Every omission makes the floor cheaper than any design that keeps the
// issue's promises.
func TestBenchIngestFloorAuditHistory(t *testing.T) {
	if os.Getenv("APPWRITE_SYNC_BENCH") == "" {
		t.Skip("set APPWRITE_SYNC_BENCH=1 (make bench)")
	}
	dur := benchDuration()
	load0 := loadAverage()
	ctx := context.Background()
	pool := floorDatabase(t)
	_, err := pool.Exec(ctx, `CREATE TABLE floor_log (seq bigserial PRIMARY KEY, id text NOT NULL, updated_at timestamptz NOT NULL, body text NOT NULL);
CREATE TABLE floor_history (id text NOT NULL, updated_at timestamptz NOT NULL);
CREATE TABLE floor_audit (seq bigserial PRIMARY KEY, payload jsonb NOT NULL)`)
	require.NoError(t, err)
	neither := floorServer(t, pool, floorUpsert("floor_rows"), floorUpsert("floor_warehouse"))
	both := floorServer(t, pool, floorUpsert("floor_rows"), floorUpsert("floor_warehouse"),
		`INSERT INTO floor_log (id, updated_at, body) SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::text[])`,
		`INSERT INTO floor_history (id, updated_at) SELECT i, a FROM unnest($1::text[], $2::timestamptz[], $3::text[]) AS t(i, a, b)`,
		`INSERT INTO floor_audit (payload) SELECT b::jsonb FROM unnest($1::text[], $2::timestamptz[], $3::text[]) AS t(i, a, b)`)

	rounds := benchRounds()
	slice := dur / time.Duration(rounds)
	var without, with loadResult
	var ratios []string
	for r := 0; r < rounds; r++ {
		res, _ := loadProc(t, neither, 64, slice, 0, fmt.Sprintf("n%d-", r), false)
		require.Zero(t, res.errs)
		without.add(res)
		rps := res.rps()
		res, _ = loadProc(t, both, 64, slice, 0, fmt.Sprintf("h%d-", r), false)
		require.Zero(t, res.errs)
		with.add(res)
		ratios = append(ratios, fmt.Sprintf("%.2f", res.rps()/rps))
	}
	var logged, audited int64
	require.NoError(t, pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM floor_log), (SELECT count(*) FROM floor_audit)`).Scan(&logged, &audited))
	require.Equal(t, with.n, logged, "every acknowledged row is in the log")
	require.Equal(t, with.n, audited, "every acknowledged row is in the audit table")
	report := fmt.Sprintf(`| ingest floor with row history and audit log (%s per side in %d slices, 64 concurrent, 1 KiB rows, %d CPUs) | value |
|---|---|
| floor with a warehouse write (as TestBenchIngestFloor) | %.0f req/s |
| the same, plus one state-store append of the body, a warehouse history row (id, updated_at) and a warehouse audit row (the body as jsonb), same transaction | %.0f req/s |
| ratio with / without | %.2f×; per slice: %s (appwrite-sync's own ratio: TestBenchIngestAuditHistory) |
| machine load average at the start / the end | %s / %s |

Command: `+"`APPWRITE_SYNC_BENCH=1 BENCH_DURATION=%s go test -count=1 -run 'TestBenchIngestFloorAuditHistory$' ./cmd/appwrite-sync/`"+`
`, dur, rounds, runtime.NumCPU(), without.rps(), with.rps(), with.rps()/without.rps(), strings.Join(ratios, " / "), load0, loadAverage(), dur)
	appendReport(t, report)
}

// floorDatabase is a durable database (with APPWRITE_SYNC_BENCH) holding the floors' state
// store table floor_rows and warehouse table floor_warehouse, and a pool on it.
func floorDatabase(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), pgtest.NewDatabase(t))
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	_, err = pool.Exec(context.Background(), `CREATE TABLE floor_rows (id text PRIMARY KEY, updated_at timestamptz NOT NULL, body text NOT NULL);
CREATE TABLE floor_warehouse (id text PRIMARY KEY, updated_at timestamptz NOT NULL, body text NOT NULL)`)
	require.NoError(t, err)
	return pool
}
