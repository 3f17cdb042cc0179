package ledger

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/appwrite-sync/appwrite-sync/connector"
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
