package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/connector/appwrite"
	"github.com/appwrite-sync/appwrite-sync/connector/sink/meilisink"
	"github.com/appwrite-sync/appwrite-sync/internal/appwritetest"
	"github.com/appwrite-sync/appwrite-sync/internal/meilitest"
	"github.com/appwrite-sync/appwrite-sync/internal/pgtest"
	"github.com/appwrite-sync/appwrite-sync/mapping"
)

// TestBenchBackfillFloor measures the least work any correct backfill into both sinks must do
// per row on this machine, and the template in the same run: the floor that says whether
// "≥ 1.0× the template at 0 ms" is reachable at all. Per page of appwrite.PageSizeDefault rows,
// read with the real client (ScanParallel, serve's four requests in flight):
//   - decode each row once and hash its content (the version guard's tie-break needs it);
//   - one durable COPY of the page into a ledger-shaped table (table, id, version, hash,
//     source text; primary key (table, id)), its own transaction: the state store's record;
//   - one durable COPY of the projected rows into the warehouse table (primary key id);
//   - one add-documents POST of the projected documents to the Meilisearch double, and at the
//     end a wait until the index holds every row.
//
// Nothing else: no version guard, no delivery log, no read-back, no task polling, no retries,
// no job checkpoint. Two pages (BENCH_FLOOR_PAGES) are handled at once, each page's three writes concurrently, so
// the floor is the rate the two cores allow for that work, not a round-trip chain.
func TestBenchBackfillFloor(t *testing.T) {
	if os.Getenv("APPWRITE_SYNC_BENCH") == "" {
		t.Skip("set APPWRITE_SYNC_BENCH=1 (make bench)")
	}
	rows := benchRows()
	api := appwritetest.New(appwritetest.Options{Start: time.Now().Add(-time.Hour)})
	defer api.Close()
	api.Seed(postsKey, rows, 1024)
	meili := meilitest.New(meilitest.Options{})
	defer meili.Close()
	state := pgtest.NewDatabase(t)
	cfg := backfillConfig(t, state, bfConfig{endpoint: api.URL, meili: meili.URL})
	table := cfg.Mapping.Lookup(postsKey)
	require.NotNil(t, table)

	ctx := context.Background()
	pool, err := pgxpool.New(ctx, state)
	require.NoError(t, err)
	defer pool.Close()
	cols := []string{"id", "created_at", "updated_at", "version_hash", "title", "views", "author_name", "synced_at"}
	_, err = pool.Exec(ctx, `CREATE TABLE floor_ledger (table_key text, row_id text, updated_at timestamptz NOT NULL,
            op smallint NOT NULL, hash bytea NOT NULL, source text NOT NULL, PRIMARY KEY (table_key, row_id));
        CREATE TABLE floor_posts (id text PRIMARY KEY, created_at timestamptz, updated_at timestamptz NOT NULL,
            version_hash bytea, title text, views bigint, author_name text, synced_at timestamptz NOT NULL)`)
	require.NoError(t, err)

	client, err := appwrite.New(appwrite.Options{Endpoint: api.URL, Project: appwritetest.ProjectDefault, APIKey: appwritetest.APIKeyDefault})
	require.NoError(t, err)
	hc := &http.Client{Timeout: time.Minute}
	tk := postsKey.String()

	// page handles one page: decode and hash once, then the three writes at once.
	page := func(p appwrite.Page) error {
		ledger := make([][]any, 0, len(p.Rows))
		wh := make([][]any, 0, len(p.Rows))
		docs := make([]map[string]any, 0, len(p.Rows))
		now := time.Now()
		for _, raw := range p.Rows {
			r, err := mapping.DecodeRow(raw)
			if err != nil {
				return err
			}
			hash, err := connector.ContentHash(raw)
			if err != nil {
				return err
			}
			ua, _ := r.UpdatedAt()
			ca, _ := r.CreatedAt()
			ledger = append(ledger, []any{tk, r.ID(), ua, int16(connector.OpUpsert), hash, string(raw)})
			vals, err := table.PostgresValues(r)
			if err != nil {
				return err
			}
			wh = append(wh, append([]any{r.ID(), ca, ua, hash}, append(vals, now)...))
			doc, err := table.MeiliDocument(r, postsKey, meilisink.EncodeID)
			if err != nil {
				return err
			}
			docs = append(docs, doc)
		}
		errs := make(chan error, 3)
		go func() {
			_, err := pool.CopyFrom(ctx, pgx.Identifier{"floor_ledger"}, []string{"table_key", "row_id", "updated_at", "op", "hash", "source"}, pgx.CopyFromRows(ledger))
			errs <- err
		}()
		go func() {
			_, err := pool.CopyFrom(ctx, pgx.Identifier{"floor_posts"}, cols, pgx.CopyFromRows(wh))
			errs <- err
		}()
		go func() {
			body, err := json.Marshal(docs)
			if err != nil {
				errs <- err
				return
			}
			resp, err := hc.Post(meili.URL+"/indexes/floor/documents?primaryKey=id", "application/json", bytes.NewReader(body))
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					err = fmt.Errorf("add documents: %s", resp.Status)
				}
			}
			errs <- err
		}()
		for range 3 {
			if err := <-errs; err != nil {
				return err
			}
		}
		return nil
	}

	self0, pg0, _ := cpuTicksOf(0)
	start := time.Now()
	pages := make(chan appwrite.Page, 2)
	var wg sync.WaitGroup
	var failed error
	var mu sync.Mutex
	inFlight := 2
	if n, err := strconv.Atoi(os.Getenv("BENCH_FLOOR_PAGES")); err == nil && n > 0 {
		inFlight = n
	}
	for range inFlight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range pages {
				if err := page(p); err != nil {
					mu.Lock()
					failed = err
					mu.Unlock()
				}
			}
		}()
	}
	scanErr := client.ScanParallel(ctx, postsKey, appwrite.ListQuery{Limit: appwrite.PageSizeDefault}, 4, func(p appwrite.Page) error {
		pages <- p
		return nil
	})
	close(pages)
	wg.Wait()
	require.NoError(t, scanErr)
	require.NoError(t, failed)
	require.Eventually(t, func() bool { return meili.DocumentCount("floor") == rows }, 30*time.Minute, 20*time.Millisecond)
	elapsed := time.Since(start)
	self1, pg1, _ := cpuTicksOf(0)
	var inLedger, inWarehouse int
	require.NoError(t, pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM floor_ledger), (SELECT count(*) FROM floor_posts)`).Scan(&inLedger, &inWarehouse))
	require.Equal(t, rows, inLedger)
	require.Equal(t, rows, inWarehouse)

	tself0, tpg0, _ := cpuTicksOf(0)
	bsent, bindexed := runTemplate(t, api, rows)
	tself1, tpg1, _ := cpuTicksOf(0)

	rate := float64(rows) / elapsed.Seconds()
	brate := float64(rows) / bsent.Seconds()
	appendReport(t, fmt.Sprintf(`| backfill floor (%d rows of ~1 KiB, Appwrite double at 0 ms, %d CPUs) | value |
|---|---|
| floor: fetch (4 requests in flight) + decode and hash once + durable COPY to a ledger-shaped table + durable COPY to the warehouse + one add-documents POST per page, %d pages at once, until the index holds every row | %.0f rows/s (%s) |
| floor CPU per row: test process (the doubles and the floor's client) / Postgres | %.1f µs / %.1f µs |
| baseline: "sync-with-meilisearch" template (as TestBenchBackfill) | %.0f rows/s (%s; index complete after %s) |
| template CPU per row: test process / Postgres | %.1f µs / %.1f µs |
| ratio floor / template | %.2f× |

Command: `+"`APPWRITE_SYNC_BENCH=1 BENCH_ROWS=%d go test -count=1 -run 'TestBenchBackfillFloor$' ./cmd/appwrite-sync/`"+`
`, rows, runtime.NumCPU(), inFlight, rate, elapsed.Round(time.Millisecond),
		float64(self1-self0)*1e4/float64(rows), float64(pg1-pg0)*1e4/float64(rows),
		brate, bsent.Round(time.Millisecond), bindexed.Round(time.Millisecond),
		float64(tself1-tself0)*1e4/float64(rows), float64(tpg1-tpg0)*1e4/float64(rows), rate/brate, rows))
}
