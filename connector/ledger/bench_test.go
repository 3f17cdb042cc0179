package ledger

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/appwrite-sync/appwrite-sync/connector"
)

// BenchmarkClaimComplete5000: claim and settle batches of 5,000 pending 1 KiB rows.
func BenchmarkClaimComplete5000(b *testing.B) {
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
	var claimT, completeT time.Duration
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		t1 := time.Now()
		c, err := bb.q.Claim(ctx, "s", 5000, time.Minute)
		if err != nil {
			b.Fatal(err)
		}
		claimT += time.Since(t1)
		outs := make([]Outcome, len(c.Items))
		for i, it := range c.Items {
			outs[i] = Outcome{Item: it}
		}
		t2 := time.Now()
		if err := bb.q.Complete(ctx, c, outs); err != nil {
			b.Fatal(err)
		}
		completeT += time.Since(t2)
	}
	b.ReportMetric(float64(claimT.Milliseconds())/float64(b.N), "claim-ms/op")
	b.ReportMetric(float64(completeT.Milliseconds())/float64(b.N), "complete-ms/op")
	b.ReportMetric(float64(5000*b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkRecordBatch1000: record pages of 1,000 new 1 KiB rows routed to two sinks.
func BenchmarkRecordBatch1000(b *testing.B) {
	ctx := context.Background()
	bb := setupB(b)
	rec := NewRecorder(bb.pool, RecorderOptions{Routes: func(connector.TableKey) []string { return []string{"postgres", "meilisearch"} }})
	defer rec.Close()
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
