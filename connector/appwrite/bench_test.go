package appwrite_test

import (
	"context"
	"testing"

	"github.com/appwrite-sync/appwrite-sync/connector/appwrite"
	"github.com/appwrite-sync/appwrite-sync/internal/appwritetest"
)

// BenchmarkScan reads 100,000 rows of about 300 bytes through the client, 1000 per page, by
// keyset. go test -run x -bench Scan ./connector/appwrite/
func BenchmarkScan(b *testing.B) {
	const n = 100_000
	srv := appwritetest.New(appwritetest.Options{})
	defer srv.Close()
	srv.Seed(posts, n, 300)
	c, err := appwrite.New(appwrite.Options{Endpoint: srv.URL, Project: appwritetest.ProjectDefault, APIKey: appwritetest.APIKeyDefault})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		rows := 0
		err := c.Scan(context.Background(), posts, appwrite.ListQuery{}, func(p appwrite.Page) error {
			rows += len(p.Rows)
			return nil
		})
		if err != nil || rows != n {
			b.Fatalf("rows %d, err %v", rows, err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "rows/s")
}
