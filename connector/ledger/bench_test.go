package ledger

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/internal/pgtest"
	"github.com/appwrite-sync/appwrite-sync/migrations"
)

// BenchmarkReadSettle5000: read and settle batches of 5,000 log entries of 1 KiB rows.
func BenchmarkReadSettle5000(b *testing.B) {
	ctx := context.Background()
	bb := setupB(b)
	pad := strings.Repeat("x", 900)
	var chs []connector.Change
	for i := 0; i < 5000*b.N; i++ {
		c := ch(fmt.Sprint("r", i), t0, connector.OpUpsert, pad)
		chs = append(chs, c)
		if len(chs) == 2000 {
			if _, err := bb.rec.RecordBatch(ctx, chs); err != nil {
				b.Fatal(err)
			}
			chs = chs[:0]
		}
	}
	if len(chs) > 0 {
		if _, err := bb.rec.RecordBatch(ctx, chs); err != nil {
			b.Fatal(err)
		}
	}
	if _, _, _, err := bb.q.Acquire(ctx, "s", "bench", time.Hour); err != nil {
		b.Fatal(err)
	}
	var readT, settleT time.Duration
	var pos Pos
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		t1 := time.Now()
		es, err := bb.q.ReadLog(ctx, pos, 5000)
		if err != nil {
			b.Fatal(err)
		}
		readT += time.Since(t1)
		pos = es[len(es)-1].Pos
		outs := make([]Outcome, len(es))
		for i, e := range es {
			outs[i] = Outcome{Item: e.Item}
		}
		t2 := time.Now()
		if _, err := bb.q.Settle(ctx, "s", "bench", time.Hour, outs, &pos); err != nil {
			b.Fatal(err)
		}
		settleT += time.Since(t2)
	}
	b.ReportMetric(float64(readT.Milliseconds())/float64(b.N), "read-ms/op")
	b.ReportMetric(float64(settleT.Milliseconds())/float64(b.N), "settle-ms/op")
	b.ReportMetric(float64(5000*b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkRecordBatch1000: record pages of 1,000 new 1 KiB rows.
func BenchmarkRecordBatch1000(b *testing.B) {
	ctx := context.Background()
	bb := setupB(b)
	rec := bb.rec
	pad := strings.Repeat("x", 900)
	page := make([]connector.Change, 1000)
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		b.StopTimer()
		for i := range page {
			page[i] = ch(fmt.Sprintf("p%d-%d", n, i), t0, connector.OpUpsert, pad)
		}
		b.StartTimer()
		if _, err := rec.RecordBatch(ctx, page); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(1000*b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkRecordBatchReads1000: record pages of 1,000 new 1 KiB rows read from the REST API
// (a first backfill), then the same pages again (a repeated backfill: all duplicates).
func BenchmarkRecordBatchReads1000(b *testing.B) {
	ctx := context.Background()
	bb := setupB(b)
	rec := bb.rec
	pad := strings.Repeat("x", 900)
	pages := make([][]connector.Change, b.N)
	for n := range pages {
		pages[n] = make([]connector.Change, 1000)
		for i := range pages[n] {
			pages[n][i] = read(fmt.Sprintf("p%d-%d", n, i), t0, pad)
		}
	}
	var again time.Duration
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		if _, err := rec.RecordBatch(ctx, pages[n]); err != nil {
			b.Fatal(err)
		}
	}
	first := b.Elapsed()
	for n := 0; n < b.N; n++ {
		t1 := time.Now()
		if _, err := rec.RecordBatch(ctx, pages[n]); err != nil {
			b.Fatal(err)
		}
		again += time.Since(t1)
	}
	b.StopTimer()
	b.ReportMetric(float64(1000*b.N)/first.Seconds(), "rows/s")
	b.ReportMetric(float64(1000*b.N)/again.Seconds(), "again-rows/s")
}

// BenchmarkRecordConcurrent: 64 goroutines record single 1 KiB changes (the webhook path
// without HTTP): group commit throughput by committers and wait. On the 2-core machine of
// the notes all settings land within 8-10k changes/s: Postgres's per-row cost dominates.
func BenchmarkRecordConcurrent(b *testing.B) {
	ctx := context.Background()
	bb := setupB(b)
	pad := strings.Repeat("x", 900)
	var next atomic.Int64
	for _, c := range []int{1, 4} {
		for _, w := range []time.Duration{time.Millisecond, 2 * time.Millisecond} {
			b.Run(fmt.Sprintf("committers=%d/wait=%s", c, w), func(b *testing.B) {
				rec := NewRecorder(bb.logPool, RecorderOptions{Committers: c, MaxWait: w})
				defer rec.Close()
				b.SetParallelism(32) // x GOMAXPROCS(2) = 64 goroutines
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						i := next.Add(1)
						if err := rec.Record(ctx, ch(fmt.Sprint("c", i), t0, connector.OpUpsert, pad)); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "changes/s")
			})
		}
	}
}

// TestBenchRecordGroups compares group commit settings on one cluster (durable under
// APPWRITE_SYNC_BENCH, a slow disk with BENCH_FLUSH_DELAY; see internal/pgtest), and the
// default setting on a second cluster without fsync as the reference: 64
// goroutines record single 1 KiB changes (the webhook path without HTTP), each setting in
// turn for BENCH_SLICE (default 2 s), BENCH_ROUNDS rounds (default 3), so that a shared
// machine's changing speed lands on every setting. It logs, per setting, the changes/s of each
// slice, the WAL bytes and the commits per change.
func TestBenchRecordGroups(t *testing.T) {
	if os.Getenv(pgtest.EnvBench) == "" {
		t.Skip("set APPWRITE_SYNC_BENCH=1")
	}
	ctx := context.Background()
	b := setup(t)
	slice, rounds := 2*time.Second, 3
	if d, err := time.ParseDuration(os.Getenv("BENCH_SLICE")); err == nil && d > 0 {
		slice = d
	}
	if n, err := strconv.Atoi(os.Getenv("BENCH_ROUNDS")); err == nil && n > 0 {
		rounds = n
	}
	type setting struct {
		name string
		opts RecorderOptions
		b    bundle
	}
	settings := []setting{
		{"committers 2, wait 1ms (default)", RecorderOptions{Committers: 2, MaxWait: time.Millisecond}, b},
		{"committers 4, wait 1ms", RecorderOptions{Committers: 4, MaxWait: time.Millisecond}, b},
		{"committers 2, wait 0", RecorderOptions{Committers: 2}, b},
		{"committers 4, wait 0", RecorderOptions{Committers: 4}, b},
	}
	if started, err := pgtest.OptionsFromEnv(); err == nil && started.Durable {
		// The reference: the default setting on a cluster that does not flush, in the same
		// rounds.
		c, err := pgtest.StartClusterWith(pgtest.Options{})
		require.NoError(t, err)
		t.Cleanup(c.Stop)
		url := pgtest.NewDatabaseOn(t, c)
		_, err = migrations.Up(ctx, url)
		require.NoError(t, err)
		pool, err := OpenPool(ctx, url, 8)
		require.NoError(t, err)
		t.Cleanup(pool.Close)
		logPool, err := OpenLogPool(ctx, url, 8)
		require.NoError(t, err)
		t.Cleanup(logPool.Close)
		settings = append(settings, setting{"committers 2, wait 1ms, on a cluster with fsync off", RecorderOptions{Committers: 2, MaxWait: time.Millisecond},
			bundle{pool: pool, logPool: logPool}})
	}
	pad := strings.Repeat("x", 900)
	var next atomic.Int64
	type total struct {
		n, commits   int64
		wal          float64
		rates        []string
		sumRate, lat float64
	}
	totals := make([]total, len(settings))
	counters := func(b bundle) (wal float64, commits int64) {
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::float8,
			(SELECT xact_commit FROM pg_stat_database WHERE datname = current_database())`).Scan(&wal, &commits))
		return wal, commits
	}
	for r := 0; r < rounds; r++ {
		for i, s := range settings {
			rec := NewRecorder(s.b.logPool, s.opts)
			var n atomic.Int64
			var latSum atomic.Int64
			wal0, c0 := counters(s.b)
			start := time.Now()
			deadline := start.Add(slice)
			var wg sync.WaitGroup
			for range 64 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for time.Now().Before(deadline) {
						t1 := time.Now()
						if err := rec.Record(ctx, ch(fmt.Sprint("g", next.Add(1)), t0, connector.OpUpsert, pad)); err != nil {
							t.Error(err)
							return
						}
						latSum.Add(int64(time.Since(t1)))
						n.Add(1)
					}
				}()
			}
			wg.Wait()
			el := time.Since(start)
			rec.Close()
			time.Sleep(1100 * time.Millisecond) // pg_stat_database is flushed about once a second
			wal1, c1 := counters(s.b)
			tt := &totals[i]
			rate := float64(n.Load()) / el.Seconds()
			tt.n, tt.commits, tt.wal = tt.n+n.Load(), tt.commits+c1-c0, tt.wal+wal1-wal0
			tt.rates = append(tt.rates, fmt.Sprintf("%.0f", rate))
			tt.sumRate += rate
			tt.lat += float64(latSum.Load()) / float64(n.Load())
		}
	}
	d, err := pgtest.Durability(ctx, os.Getenv(pgtest.EnvURL))
	require.NoError(t, err)
	var sb strings.Builder
	fmt.Fprintf(&sb, "State store Postgres: %s.\n\n| group commit setting (64 goroutines, 1 KiB changes, %s slices, %d rounds) | changes/s (each slice) | vs the default | mean latency | WAL per change | commits per change |\n|---|---|---|---|---|---|\n", d, slice, rounds)
	for i, s := range settings {
		tt := totals[i]
		fmt.Fprintf(&sb, "| %s | %.0f (%s) | %.2f× | %.2f ms | %.0f B | %.3f |\n", s.name, tt.sumRate/float64(rounds), strings.Join(tt.rates, " / "),
			tt.sumRate/totals[0].sumRate, tt.lat/float64(rounds)/1e6, tt.wal/float64(tt.n), float64(tt.commits)/float64(tt.n))
	}
	t.Log("\n" + sb.String())
}
