package meilitest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/meilisearch/meilisearch-go"

	"github.com/appwrite-sync/appwrite-sync/internal/meilitest"
)

// BenchmarkAddDocuments pushes Appwrite-shaped rows through meilisearch-go in batches of 1,000,
// the way a backlog backfill does, and reports rows/s including task processing.
//
//	go test -run '^$' -bench AddDocuments -benchtime 200x ./internal/meilitest/
func BenchmarkAddDocuments(b *testing.B) {
	const batch = 1000
	srv := meilitest.New(meilitest.Options{})
	defer srv.Close()
	client := meilisearch.New(srv.URL)
	defer client.Close()
	ctx := context.Background()
	docs := make([]map[string]any, batch)
	pk := &meilisearch.DocumentOptions{PrimaryKey: ptr("id")}

	b.ResetTimer()
	start := time.Now()
	var last int64
	for i := range b.N {
		for j := range docs {
			n := i*batch + j
			docs[j] = map[string]any{
				"id": fmt.Sprintf("row_%d", n), "$id": fmt.Sprintf("row.%d", n),
				"$databaseId": "main", "$tableId": "orders", "$createdAt": "2025-01-01T00:00:00.000+00:00",
				"$updatedAt": "2025-01-02T00:00:00.000+00:00", "customer": "Jane Doe", "total": n % 977,
				"status": "paid", "items": []string{"a", "b"},
			}
		}
		info, err := client.Index("orders").AddDocuments(ctx, docs, pk)
		if err != nil {
			b.Fatal(err)
		}
		last = info.TaskUID
	}
	task, err := client.WaitForTask(ctx, last, time.Millisecond)
	if err != nil || task.Status != meilisearch.TaskStatusSucceeded {
		b.Fatalf("last task: %v %+v", err, task)
	}
	b.ReportMetric(float64(b.N*batch)/time.Since(start).Seconds(), "rows/s")
	if got := srv.DocumentCount("orders"); got != b.N*batch {
		b.Fatalf("stored %d documents, want %d", got, b.N*batch)
	}
}
