package pgsink

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/connector/sink"
	"github.com/appwrite-sync/appwrite-sync/connector/sink/sinktest"
	"github.com/appwrite-sync/appwrite-sync/internal/pgtest"
	"github.com/appwrite-sync/appwrite-sync/internal/procstat"
)

// BenchmarkApply applies batches of new rows: 40 is about what delivery sends per batch under
// full ingest load, 1000 the default warehouse.batch_size, 5000 a backlog's batch. Besides
// rows/s it reports the machine's busy CPU per row (this process and Postgres together, from
// /proc/stat; the time building the items is included, about the same in every run), which
// on a noisy VM separates two versions better than the wall clock does.
func BenchmarkApply(b *testing.B) {
	for _, size := range []int{40, 1000, 5000} {
		b.Run(strconv.Itoa(size), func(b *testing.B) {
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
			items := make([]sink.Item, size)
			cpu0, procOK := procstat.Read()
			b.ResetTimer()
			for n := 0; n < b.N; n++ {
				b.StopTimer()
				for i := range items {
					items[i] = sinktest.Row(fmt.Sprintf("r%d-%d", n, i), t0, connector.OpUpsert, "title", int64(i), nil)
				}
				b.StartTimer()
				if err := s.Apply(ctx, items); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "rows/s")
			if cpu1, ok := procstat.Read(); procOK && ok {
				b.ReportMetric(float64(cpu1.Busy-cpu0.Busy)*1e4/float64(b.N*size), "busy-µs/row") // USER_HZ 100
			}
		})
	}
}
