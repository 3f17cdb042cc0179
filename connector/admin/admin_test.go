package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector/ledger"
	"github.com/appwrite-sync/appwrite-sync/connector/metrics"
	"github.com/appwrite-sync/appwrite-sync/internal/pgtest"
	"github.com/appwrite-sync/appwrite-sync/migrations"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode)
	pgtest.Main(m)
}

const token = "0123456789abcdef-admin"

// testBundle is an admin API over a fresh state store; Replay records what it was given.
type testBundle struct {
	pool   *pgxpool.Pool
	ledger *ledger.Admin
	router http.Handler

	mu       sync.Mutex
	replayed []ledger.Quarantined
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	ctx := context.Background()
	dsn := pgtest.NewMigratedDatabase(t, migrations.Up)
	pool, err := ledger.OpenPool(ctx, dsn, 4)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	b := &testBundle{pool: pool, ledger: ledger.NewAdmin(pool)}
	b.router = Router(Options{Token: token, Ledger: b.ledger, Replay: func(_ context.Context, q ledger.Quarantined) (bool, string) {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.replayed = append(b.replayed, q)
		return true, "recorded"
	}})
	return b
}

// quarantine stores n requests with bodies "body-<i>", received age ago; it returns their ids.
func (b *testBundle) quarantine(t *testing.T, n int, age time.Duration) []int64 {
	t.Helper()
	rows, err := b.pool.Query(context.Background(), `INSERT INTO appwrite_sync.quarantine (webhook, reason, body, received_at)
        SELECT 'webhooks[0]', 'undecodable', convert_to('body-' || i, 'UTF8'), now() - $2::interval
        FROM generate_series(1, $1) i ORDER BY i RETURNING id`, n, age)
	require.NoError(t, err)
	var ids []int64
	for rows.Next() {
		var id int64
		require.NoError(t, rows.Scan(&id))
		ids = append(ids, id)
	}
	require.NoError(t, rows.Err())
	return ids
}

func (b *testBundle) do(t *testing.T, method, target, body string) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(method, target, bytes.NewBufferString(body))
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	w := httptest.NewRecorder()
	b.router.ServeHTTP(w, req)
	var out map[string]any
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &out), w.Body.String())
	return w.Code, out
}

// Replaying one id reads that request alone, wherever it is in the quarantine: it used to
// read the first 10,000 requests with their bodies and look for the id among them, so a
// request further down could not be replayed at all.
func TestReplayOneID(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ids := b.quarantine(t, 10_001, 0)
	last := ids[len(ids)-1]

	code, out := b.do(t, http.MethodPost, "/admin/quarantine/replay", fmt.Sprintf(`{"id": %d}`, last))
	require.Equal(t, http.StatusOK, code, out)
	require.EqualValues(t, 1, out["replayed"])
	require.Len(t, b.replayed, 1)
	require.Equal(t, last, b.replayed[0].ID)
	require.Equal(t, "body-10001", b.replayed[0].Body)

	// Replayed once: it is not replayed again, and an unknown id is not found either.
	for _, id := range []int64{last, last + 1} {
		code, out = b.do(t, http.MethodPost, "/admin/quarantine/replay", fmt.Sprintf(`{"id": %d}`, id))
		require.Equal(t, http.StatusNotFound, code, out)
	}
	require.Len(t, b.replayed, 1)
}

// Replaying everything goes page by page through the whole quarantine.
func TestReplayAllPages(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ids := b.quarantine(t, 2*replayPage+5, 0)
	code, out := b.do(t, http.MethodPost, "/admin/quarantine/replay", "")
	require.Equal(t, http.StatusOK, code, out)
	require.EqualValues(t, len(ids), out["replayed"])
	require.Len(t, b.replayed, len(ids))
	for i, q := range b.replayed {
		require.Equal(t, ids[i], q.ID)
		require.Equal(t, fmt.Sprint("body-", i+1), q.Body)
	}
	code, out = b.do(t, http.MethodPost, "/admin/quarantine/replay", "")
	require.Equal(t, http.StatusOK, code, out)
	require.EqualValues(t, 0, out["replayed"], "replayed requests are done")
}

// list follows next from page to page and returns the ids seen on each page.
func list(t *testing.T, b *testBundle, path, query, key, field string) [][]string {
	t.Helper()
	var pages [][]string
	after := ""
	for range 20 {
		q := query
		if after != "" {
			q += "&after=" + url.QueryEscape(after)
		}
		code, out := b.do(t, http.MethodGet, path+"?"+q, "")
		require.Equal(t, http.StatusOK, code, out)
		var page []string
		for _, e := range out[key].([]any) {
			page = append(page, fmt.Sprint(e.(map[string]any)[field]))
		}
		pages = append(pages, page)
		next, ok := out["next"].(string)
		if !ok {
			return pages
		}
		after = next
	}
	t.Fatal("the listing never ended")
	return nil
}

func TestQuarantineListingPages(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ids := b.quarantine(t, 5, 0)
	_, err := b.pool.Exec(context.Background(), `UPDATE appwrite_sync.quarantine SET replayed_at = now() WHERE id = $1`, ids[1])
	require.NoError(t, err)
	s := func(i int) string { return fmt.Sprint(ids[i]) }

	require.Equal(t, [][]string{{s(0), s(2)}, {s(3), s(4)}}, list(t, b, "/admin/quarantine", "limit=2", "quarantine", "id"))
	require.Equal(t, [][]string{{s(0), s(1)}, {s(2), s(3)}, {s(4)}}, list(t, b, "/admin/quarantine", "limit=2&all=true", "quarantine", "id"))
	require.Equal(t, [][]string{{s(0), s(2), s(3), s(4)}}, list(t, b, "/admin/quarantine", "", "quarantine", "id"))

	code, out := b.do(t, http.MethodGet, "/admin/quarantine?limit=1&body=true", "")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "body-1", out["quarantine"].([]any)[0].(map[string]any)["body"])
	_, out = b.do(t, http.MethodGet, "/admin/quarantine?limit=1", "")
	require.NotContains(t, out["quarantine"].([]any)[0], "body", "bodies only when asked for")
	code, _ = b.do(t, http.MethodGet, "/admin/quarantine?after=x", "")
	require.Equal(t, http.StatusBadRequest, code)
}

func TestDeadLetterListingPages(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// Three dead at the same instant: the cursor must tell them apart by sink, table and id.
	_, err := b.pool.Exec(context.Background(), `INSERT INTO appwrite_sync.sink_retry (sink, table_key, row_id, seq, attempts, last_error, dead_at) VALUES
        ('postgres', 'main/posts', 'a', 1, 1, 'bad', '2026-03-26 10:00:00.000001+00'),
        ('meilisearch', 'main/posts', 'b', 2, 1, 'bad', '2026-03-26 10:00:01+00'),
        ('postgres', 'main/posts', 'c', 3, 1, 'bad', '2026-03-26 10:00:01+00'),
        ('postgres', 'main/users', 'a', 4, 1, 'bad', '2026-03-26 10:00:01+00'),
        ('postgres', 'main/posts', 'e', 5, 1, 'bad', '2026-03-26 10:00:02+00'),
        ('postgres', 'main/posts', 'pending', 6, 1, 'retrying', NULL)`)
	require.NoError(t, err)
	require.Equal(t, [][]string{{"a", "b"}, {"c", "a"}, {"e"}}, list(t, b, "/admin/dead-letter", "limit=2", "dead_letter", "row_id"))
	require.Equal(t, [][]string{{"a", "c", "a"}, {"e"}}, list(t, b, "/admin/dead-letter", "limit=3&sink=postgres", "dead_letter", "row_id"))
	require.Equal(t, [][]string{{"a", "b", "c", "a", "e"}}, list(t, b, "/admin/dead-letter", "", "dead_letter", "row_id"))
	code, out := b.do(t, http.MethodGet, "/admin/dead-letter?after=nonsense", "")
	require.Equal(t, http.StatusBadRequest, code, out)
}

func counter(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	require.NoError(t, c.Write(&m))
	return m.GetCounter().GetValue()
}

// The sweep removes requests past the retention, then the oldest beyond the cap, counts each
// in the metric by reason and warns.
func TestQuarantineSweep(t *testing.T) {
	t.Parallel()
	b := setup(t)
	old := b.quarantine(t, 3, 40*24*time.Hour)
	recent := b.quarantine(t, 10, time.Hour)
	m := metrics.New()
	logger, hook := logtest.NewNullLogger()
	s := QuarantineSweeper{Ledger: b.ledger, Retention: 30 * 24 * time.Hour, MaxRows: 4, Metrics: m, Log: logrus.NewEntry(logger)}
	ctx := context.Background()

	require.NoError(t, s.Sweep(ctx))
	require.Equal(t, 3.0, counter(t, m.QuarantineDropped.WithLabelValues("retention")))
	require.Equal(t, 6.0, counter(t, m.QuarantineDropped.WithLabelValues("cap")))
	var kept []int64
	rows, err := b.pool.Query(ctx, `SELECT id FROM appwrite_sync.quarantine ORDER BY id`)
	require.NoError(t, err)
	for rows.Next() {
		var id int64
		require.NoError(t, rows.Scan(&id))
		kept = append(kept, id)
	}
	require.Equal(t, recent[6:], kept, "the newest max_rows are kept")
	require.NotContains(t, kept, old[0])
	var warned []string
	for _, e := range hook.AllEntries() {
		require.Equal(t, logrus.WarnLevel, e.Level)
		warned = append(warned, e.Data["reason"].(string))
	}
	require.ElementsMatch(t, []string{"retention", "cap"}, warned)

	// Within bounds: nothing more goes, nothing is logged.
	hook.Reset()
	require.NoError(t, s.Sweep(ctx))
	require.Equal(t, 6.0, counter(t, m.QuarantineDropped.WithLabelValues("cap")))
	require.Empty(t, hook.AllEntries())

	// 0 turns both off.
	b.quarantine(t, 3, 400*24*time.Hour)
	require.NoError(t, QuarantineSweeper{Ledger: b.ledger}.Sweep(ctx))
	var n int
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM appwrite_sync.quarantine`).Scan(&n))
	require.Equal(t, 7, n)
}
