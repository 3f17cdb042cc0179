package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector/config"
	"github.com/appwrite-sync/appwrite-sync/internal/pgtest"
)

// The load generator: signed ~1 KiB row webhooks. Run with `make bench` (APPWRITE_SYNC_BENCH=1);
// BENCH_DURATION overrides the 20 s per phase.

func benchDuration() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("BENCH_DURATION")); err == nil {
		return d
	}
	return 20 * time.Second
}

func kibRow(id string, n int) []byte {
	pad := strings.Repeat("lorem ipsum dolor sit amet ", 30)[:700]
	return []byte(fmt.Sprintf(`{"$id":%q,"$sequence":"%d","$databaseId":"main","$tableId":"posts","$createdAt":"2026-01-01T00:00:00.000+00:00","$updatedAt":%q,"$permissions":["read(\"any\")"],"title":"title %d","views":%d,"body":%q,"author":{"$id":"a1","name":"Ada"}}`,
		id, n, time.Date(2026, 3, 26, 10, 0, 0, 0, time.UTC).Add(time.Duration(n)*time.Millisecond).Format("2006-01-02T15:04:05.000+00:00"), n, n, pad))
}

// baselineServer verifies the signature and answers 200 without storing: the ceiling.
func baselineServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 5<<20))
		m := hmac.New(sha1.New, []byte(testSecret))
		m.Write([]byte(webhookURL))
		m.Write(body)
		want := base64.StdEncoding.EncodeToString(m.Sum(nil))
		if !hmac.Equal([]byte(want), []byte(r.Header.Get("X-Appwrite-Webhook-Signature"))) {
			w.WriteHeader(401)
			return
		}
		w.Write([]byte(`{"recorded":true}`))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

type loadResult struct {
	n, errs int64
	lat     []time.Duration
	elapsed time.Duration
	acked   map[string]time.Time // row id → ack time (freshness)
}

func (r loadResult) rps() float64 { return float64(r.n) / r.elapsed.Seconds() }

func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[int(float64(len(d)-1)*p)]
}

// load sends for dur with conc workers; rate > 0 paces a steady total rate on an open-loop
// schedule: request i is due at start + i/rate whatever happened before (a ticker drops
// ticks whenever the machine is busy, which under-delivers the rate), and its latency is
// measured from when it was due, so a slow server cannot hide its queueing delay by slowing
// the generator down (coordinated omission).
func load(base string, conc int, dur time.Duration, rate int, idPrefix string, track bool) loadResult {
	tr := &http.Transport{MaxIdleConnsPerHost: conc * 2}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var n, errs, seq atomic.Int64
	var mu sync.Mutex
	res := loadResult{acked: map[string]time.Time{}}
	start := time.Now()
	deadline := start.Add(dur)
	var wg sync.WaitGroup
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			for time.Now().Before(deadline) {
				i := int(seq.Add(1))
				t0 := time.Now()
				if rate > 0 {
					due := start.Add(time.Duration(i-1) * time.Second / time.Duration(rate))
					if !due.Before(deadline) {
						break
					}
					time.Sleep(time.Until(due))
					t0 = due
				}
				id := fmt.Sprintf("%s%d", idPrefix, i)
				body := kibRow(id, i)
				req, _ := http.NewRequest(http.MethodPost, base+"/webhooks/appwrite", strings.NewReader(string(body)))
				req.Header.Set("X-Appwrite-Webhook-Events", "databases.main.tables.posts.rows."+id+".create")
				req.Header.Set("X-Appwrite-Webhook-Signature", sign(webhookURL, body))
				if rate == 0 {
					t0 = time.Now()
				}
				resp, err := client.Do(req)
				if err != nil {
					errs.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				d := time.Since(t0)
				if resp.StatusCode != 200 {
					errs.Add(1)
					continue
				}
				n.Add(1)
				lat = append(lat, d)
				if track {
					mu.Lock()
					res.acked[id] = time.Now()
					mu.Unlock()
				}
			}
			mu.Lock()
			res.lat = append(res.lat, lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	res.n, res.errs = n.Load(), errs.Load()
	return res
}

// TestBenchIngest is the ingest + freshness benchmark of the ledger issue.
func TestBenchIngest(t *testing.T) {
	if os.Getenv("APPWRITE_SYNC_BENCH") == "" {
		t.Skip("set APPWRITE_SYNC_BENCH=1 (make bench)")
	}
	dur := benchDuration()
	state := pgtest.NewDatabase(t)
	cfg := testConfig(t, state, state, "")
	// The shipped defaults, not the tests' quicker settings: what a user gets.
	cfg.State.GroupCommitWait = config.GroupCommitWaitDefault
	cfg.Warehouse.BatchSize = config.WarehouseBatchSizeDefault
	cfg.Delivery.PollInterval, cfg.Delivery.Lease = config.PollIntervalDefault, config.LeaseDefault
	// serve's runtime settings too (soft memory limit, GOGC under it): the instance runs in
	// this process, so the baseline server and the generator get them as well.
	prevLimit, prevGC := debug.SetMemoryLimit(-1), debug.SetGCPercent(100)
	debug.SetGCPercent(prevGC)
	t.Cleanup(func() { debug.SetMemoryLimit(prevLimit); debug.SetGCPercent(prevGC) })
	_, gc := applyRuntime(cfg.MemoryLimit)
	t.Logf("runtime: memory_limit %s, GC %+v", config.FormatMemoryLimit(cfg.MemoryLimit), gc)
	in := startInstance(t, cfg)
	bare := baselineServer(t)
	baseline := load(bare, 64, dur, 0, "b", false)
	// The generator's own floor: the bare server at the steady rate (the same machine's
	// scheduling delays show up in every latency below).
	baselineSteady := load(bare, 64, dur, 2000, "bs", false)
	if p := os.Getenv("BENCH_CPUPROFILE"); p != "" { // generator + service, durable phase
		f, err := os.Create(p)
		require.NoError(t, err)
		require.NoError(t, pprof.StartCPUProfile(f))
	}
	self0, pg0 := cpuTicks()
	durable := load(in.base, 64, dur, 0, "d", false)
	self1, pg1 := cpuTicks()
	pprof.StopCPUProfile()
	waitDrained(t, state, 5*time.Minute) // the steady phase starts from an idle engine
	steady := load(in.base, 64, dur, 2000, "s", true)
	waitDrained(t, state, 5*time.Minute)

	// Freshness: synced_at - ack time per row of the steady phase.
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, state)
	require.NoError(t, err)
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT id, synced_at FROM wh.posts WHERE id LIKE 's%'`)
	require.NoError(t, err)
	var fresh []time.Duration
	for rows.Next() {
		var id string
		var at time.Time
		require.NoError(t, rows.Scan(&id, &at))
		if ack, ok := steady.acked[id]; ok {
			fresh = append(fresh, max(0, at.Sub(ack)))
		}
	}
	require.NoError(t, rows.Err())
	report := fmt.Sprintf(`| ingest benchmark (%s per phase, 64 concurrent, 1 KiB rows, default config and runtime settings, warehouse in the state store's cluster) | value |
|---|---|
| baseline: bare net/http, verify only | %.0f req/s (p99 %s) |
| appwrite-sync durable ingest | %.0f req/s (p99 %s, errors %d) |
| ratio durable / baseline | %.2f× (goal ≥ 0.5×) |
| steady 2,000 req/s: achieved | %.0f req/s |
| steady 2,000 req/s: ack latency p50 / p90 / p99 / p99.9 | %s / %s / %s / %s (goal p99 ≤ 10 ms) |
| same schedule against the bare server (the generator's floor): p50 / p99 | %s / %s |
| freshness to warehouse p50 / p99 (%d rows) | %s / %s (goal p99 ≤ 250 ms) |
| CPU per durable request: generator + service / Postgres | %.0f µs / %.0f µs |
`, dur, baseline.rps(), pct(baseline.lat, .99), durable.rps(), pct(durable.lat, .99), durable.errs,
		durable.rps()/baseline.rps(), steady.rps(), pct(steady.lat, .5), pct(steady.lat, .9), pct(steady.lat, .99), pct(steady.lat, .999),
		pct(baselineSteady.lat, .5), pct(baselineSteady.lat, .99),
		len(fresh), pct(fresh, .5), pct(fresh, .99),
		float64(self1-self0)*1e4/float64(durable.n), float64(pg1-pg0)*1e4/float64(durable.n))
	appendReport(t, report)
	require.Zero(t, durable.errs)
	require.Equal(t, len(steady.acked), len(fresh), "every acknowledged row must be in the warehouse")
}
