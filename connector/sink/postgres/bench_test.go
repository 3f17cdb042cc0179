package postgres

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/connector/sink"
	"github.com/appwrite-sync/appwrite-sync/connector/sink/sinktest"
	"github.com/appwrite-sync/appwrite-sync/internal/pgtest"
)

// BenchmarkApply5000 applies batches of 5,000 upserts (rows/s reported).
func BenchmarkApply5000(b *testing.B) {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.NewDatabase(b))
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	s := New(pool, sinktest.Mapping(b), nil)
	if err := s.Start(ctx); err != nil {
		b.Fatal(err)
	}
	t0 := time.Date(2026, 3, 26, 10, 0, 0, 0, time.UTC)
	items := make([]sink.Item, 5000)
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		b.StopTimer()
		for i := range items {
			items[i] = sinktest.Row(fmt.Sprintf("r%d", i), t0.Add(time.Duration(n)*time.Millisecond), connector.OpUpsert, "title", int64(i), nil)
		}
		b.StartTimer()
		if err := s.Apply(ctx, items); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(items))/b.Elapsed().Seconds(), "rows/s")
}
