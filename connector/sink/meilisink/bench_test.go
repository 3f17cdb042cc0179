package meilisink

import (
	"fmt"
	"testing"
	"time"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/connector/sink"
	"github.com/appwrite-sync/appwrite-sync/connector/sink/sinktest"
	"github.com/appwrite-sync/appwrite-sync/internal/meilitest"
)

// BenchmarkApply10k: one claimed batch of 10,000 rows (dotted ids) applied to the double, task
// included. The rows/s metric is the sink's ceiling without the ledger.
func BenchmarkApply10k(b *testing.B) {
	d := newDouble(b, meilitest.Options{})
	s := d.open(b, sinktest.Mapping(b), nil)
	ctx := testContext(b)
	if err := s.Start(ctx); err != nil {
		b.Fatal(err)
	}
	items := make([]sink.Item, 10000)
	at := time.Date(2026, 3, 26, 10, 0, 0, 0, time.UTC)
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		b.StopTimer()
		for i := range items {
			items[i] = sinktest.Row(fmt.Sprintf("bk.%07d", i), at.Add(time.Duration(n)*time.Second), connector.OpUpsert, fmt.Sprint("title ", i), int64(i), nil)
		}
		b.StartTimer()
		if err := s.Apply(ctx, items); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(items))/b.Elapsed().Seconds(), "rows/s")
}
