package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/connector/config"
	"github.com/appwrite-sync/appwrite-sync/connector/sink/meilisink"
	"github.com/appwrite-sync/appwrite-sync/internal/appwritetest"
	"github.com/appwrite-sync/appwrite-sync/internal/meilitest"
	"github.com/appwrite-sync/appwrite-sync/internal/pgtest"
	"github.com/appwrite-sync/appwrite-sync/migrations"
)

var postsKey = connector.TableKey{Database: "main", Table: "posts"}

// bfConfig is what a backfill test instance differs in.
type bfConfig struct {
	endpoint string // appwrite.endpoint: the double
	meili    string // Meilisearch URL; "" keeps main/posts out of Meilisearch
	extra    string // more top-level YAML
	// reconcile is the reconcile section; default a 2s job lease.
	reconcile string
	admin     string // admin.listen; default a free port
	listen    string // listen; default a free port
}

// backfillConfigText renders a config whose appwrite section points at the double. Tables:
// main/posts (warehouse, and Meilisearch when c.meili is set) and main/missing (mapped but
// absent from the source).
func backfillConfigText(t testing.TB, stateURL string, c bfConfig) string {
	t.Helper()
	ports, err := pgtest.FreePorts(2)
	require.NoError(t, err)
	if c.listen == "" {
		c.listen = fmt.Sprintf("127.0.0.1:%d", ports[0])
	}
	if c.admin == "" {
		c.admin = fmt.Sprintf("127.0.0.1:%d", ports[1])
	}
	if c.reconcile == "" {
		c.reconcile = "{lease: 2s}"
	}
	meiliURL, meiliTable := "http://127.0.0.1:7700", ""
	if c.meili != "" {
		meiliURL = c.meili
		meiliTable = `
    meilisearch:
      index: posts
      fields: [title, views, {author_name: author.name}]`
	}
	return fmt.Sprintf(`
listen: %q
admin: {listen: %q, token: %q}
webhooks:
  - url: %q
    signing_keys: [%q]
state: {database_url: %q, group_commit_wait: 1ms}
warehouse: {schema: wh, batch_size: 500}
meilisearch: {url: %q, timeout: 10s}
delivery: {lease: 5s, poll_interval: 20ms, max_backoff: 500ms}
server: {shutdown_timeout: 5s, drain_delay: 0s}
log: {level: warn, format: json}
appwrite: {endpoint: %q, project: %q, api_key: %q}
reconcile: %s
tables:
  - database: main
    table: posts%s
    postgres:
      table: posts
      columns:
        title: text
        views: bigint
        author_name: {from: author.name, type: text}
  - database: main
    table: missing
    postgres: {table: missing, columns: {title: text}}
%s`, c.listen, c.admin, testToken, webhookURL, testSecret, stateURL, meiliURL, c.endpoint,
		appwritetest.ProjectDefault, appwritetest.APIKeyDefault, c.reconcile, meiliTable, c.extra)
}

func backfillConfig(t testing.TB, stateURL string, c bfConfig) *config.Config {
	t.Helper()
	return parseText(t, backfillConfigText(t, stateURL, c))
}

func parseText(t testing.TB, text string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(text), func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	return cfg
}

// newAppwrite starts the Appwrite double with its clock two days behind (as Appwrite's clock
// is behind the state store's at any later moment).
func newAppwrite(t testing.TB) *appwritetest.Server {
	api := appwritetest.New(appwritetest.Options{Start: time.Now().Add(-48 * time.Hour)})
	t.Cleanup(api.Close)
	return api
}

// adminCall sends a request to an admin API base URL and returns status and body.
func adminCall(t testing.TB, base, method, path, body string) (int, string) {
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// startJob posts a backfill job and returns its id.
func startJob(t testing.TB, adminBase, table, mode string) string {
	code, body := adminCall(t, adminBase, http.MethodPost, "/admin/backfill", fmt.Sprintf(`{"table":%q,"mode":%q}`, table, mode))
	require.Equal(t, http.StatusAccepted, code, body)
	var out struct{ ID string }
	require.NoError(t, json.Unmarshal([]byte(body), &out))
	return out.ID
}

// getJob reads a job through the admin API; ok is false while the API does not answer.
func getJob(t testing.TB, adminBase, id string) (jobView, bool) {
	code, body := adminCall(t, adminBase, http.MethodGet, "/admin/backfill/"+id, "")
	if code != http.StatusOK {
		return jobView{}, false
	}
	var j jobView
	require.NoError(t, json.Unmarshal([]byte(body), &j))
	return j, true
}

func waitJob(t testing.TB, adminBase, id string, timeout time.Duration) jobView {
	var j jobView
	require.Eventually(t, func() bool {
		var ok bool
		j, ok = getJob(t, adminBase, id)
		return ok && j.done()
	}, timeout, 50*time.Millisecond, "job %s did not end", id)
	return j
}

// sourceRows renders the double's table as the warehouse should hold it.
func sourceRows(t testing.TB, api *appwritetest.Server) map[string]whRow {
	out := map[string]whRow{}
	for _, raw := range api.Rows(postsKey) {
		var r struct {
			ID      string `json:"$id"`
			Updated string `json:"$updatedAt"`
			Title   string `json:"title"`
			Views   int64  `json:"views"`
			Author  struct {
				Name string `json:"name"`
			} `json:"author"`
		}
		require.NoError(t, json.Unmarshal(raw, &r))
		at, err := time.Parse(time.RFC3339Nano, r.Updated)
		require.NoError(t, err)
		out[r.ID] = whRow{Title: r.Title, Views: r.Views, Author: r.Author.Name, Updated: at}
	}
	return out
}

// requireWarehouseEqualsSource compares row by row (instants compared as instants).
func requireWarehouseEqualsSource(t *testing.T, stateURL string, api *appwritetest.Server) {
	t.Helper()
	want, got := sourceRows(t, api), warehouseRows(t, stateURL)
	require.Equal(t, len(want), len(got), "row count")
	for id, w := range want {
		g, ok := got[id]
		require.True(t, ok, "row %s missing from the warehouse", id)
		require.True(t, w.Updated.Equal(g.Updated), "row %s: updated_at %s, want %s", id, g.Updated, w.Updated)
		w.Updated, g.Updated = time.Time{}, time.Time{}
		require.Equal(t, w, g, id)
	}
}

func putPost(api *appwritetest.Server, id, title string, views int64, at time.Time) json.RawMessage {
	return api.Put(postsKey, map[string]any{"$id": id, "title": title, "views": views,
		"author": map[string]any{"$id": "a1", "name": "Ada"}, "$updatedAt": at, "$permissions": []string{`read("any")`}})
}

// TestBackfillFullWhileWebhooksFlow backfills 20,000 rows while webhooks for the same rows
// arrive with newer versions (updates, deletes, creates) and older ones (replays); at the end
// the warehouse and the index equal the source.
func TestBackfillFullWhileWebhooksFlow(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("20,000 rows")
	}
	// 12% of the rows get a webhook (a sixth of them deletes) and 1% more are created, as in
	// the 50,000-row version this was (31 s of the package's 135 s under load).
	const rows, touched, created = 20000, 2400, 200
	api := newAppwrite(t)
	t0 := api.Now()
	current := make(map[string]json.RawMessage, rows) // what Appwrite would put in a webhook
	ids := make([]string, rows)
	for i := range rows {
		ids[i] = fmt.Sprintf("p%05d", i)
		current[ids[i]] = putPost(api, ids[i], fmt.Sprintf("v1-%d", i), int64(i), t0)
	}
	meili := meilitest.New(meilitest.Options{})
	t.Cleanup(meili.Close)
	state := pgtest.NewMigratedDatabase(t, migrations.Up)
	in := startInstance(t, backfillConfig(t, state, bfConfig{endpoint: api.URL, meili: meili.URL}))
	api.SetLatency(2 * time.Millisecond) // let the webhooks overlap the scan

	// Per worker, its own rows, so each row's events stay in order (as Appwrite sends them).
	rng := rand.New(rand.NewSource(7))
	rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	const workers = 4
	type op struct {
		kind string // update, delete, stale, create
		id   string
	}
	plans := make([][]op, workers)
	for i, id := range ids[:touched] {
		kind := []string{"update", "update", "stale", "delete", "update", "stale"}[i%6]
		plans[i%workers] = append(plans[i%workers], op{kind, id})
	}
	for i := range created {
		plans[i%workers] = append(plans[i%workers], op{"create", fmt.Sprintf("n%04d", i)})
	}
	var mu sync.Mutex // guards current and the double's clock-derived versions
	id := startJob(t, in.admin, "main/posts", "full")
	var wg sync.WaitGroup
	var sent, failed int64
	began := time.Now()
	for w := range workers {
		wg.Add(1)
		go func(plan []op) {
			defer wg.Done()
			for k, o := range plan {
				var e event
				switch o.kind {
				case "update", "create":
					mu.Lock()
					at := t0.Add(time.Duration(1+k) * time.Millisecond)
					body := putPost(api, o.id, fmt.Sprintf("v2-%s-%d", o.id, k), int64(k), at)
					current[o.id] = body
					mu.Unlock()
					e = event{action: o.kind, body: body}
				case "delete":
					mu.Lock()
					body := current[o.id]
					api.Delete(postsKey, o.id)
					mu.Unlock()
					e = event{action: "delete", body: body} // the row as it was, $updatedAt unchanged
				case "stale":
					e = event{action: "update", body: rowBody(o.id, t0.Add(-time.Hour), "stale", 0, "old")}
				}
				code := post(t, in.base, o.id, e)
				mu.Lock()
				sent++
				if code != http.StatusOK {
					failed++
				}
				mu.Unlock()
			}
		}(plans[w])
	}
	wg.Wait()
	require.Zero(t, failed, "every webhook is acknowledged")
	j, ok := getJob(t, in.admin, id)
	require.True(t, ok)
	t.Logf("webhooks answered in %s; the job was then %s, %d rows read", time.Since(began), j.State, j.RowsRead)
	j = waitJob(t, in.admin, id, 5*time.Minute)
	require.Equal(t, "succeeded", j.State, j.Error)
	require.GreaterOrEqual(t, j.RowsRead, int64(rows-touched/6), "the rows deleted before the scan reached them are not read")
	t.Logf("job: read %d, changed %d, deleted %d, %.0f rows/s; %d webhooks", j.RowsRead, j.RowsChanged, j.RowsDeleted, j.RatePerS, sent)

	waitDrained(t, state, 5*time.Minute)
	requireWarehouseEqualsSource(t, state, api)
	// The index holds the same rows.
	want := sourceRows(t, api)
	require.Eventually(t, func() bool { return meili.DocumentCount("posts") == len(want) }, time.Minute, 50*time.Millisecond)
	docs := meili.Documents("posts")
	for id, w := range want {
		d, ok := docs[meilisink.EncodeID(id)]
		require.True(t, ok, "row %s missing from the index", id)
		require.Equal(t, w.Title, d["title"], id)
		require.Equal(t, float64(w.Views), d["views"], id)
	}
}

// TestBackfillRepairsLostWebhooks: webhooks lost (none sent at all here). Rows updated in the
// source are repaired by an incremental reconcile, rows deleted by a full one.
func TestBackfillRepairsLostWebhooks(t *testing.T) {
	t.Parallel()
	api := newAppwrite(t)
	t0 := api.Now()
	for i := range 300 {
		putPost(api, fmt.Sprintf("r%03d", i), "v1", int64(i), t0)
	}
	state := pgtest.NewMigratedDatabase(t, migrations.Up)
	in := startInstance(t, backfillConfig(t, state, bfConfig{endpoint: api.URL}))
	j := waitJob(t, in.admin, startJob(t, in.admin, "main/posts", "full"), time.Minute)
	require.Equal(t, "succeeded", j.State, j.Error)
	waitDrained(t, state, time.Minute)
	requireWarehouseEqualsSource(t, state, api)

	// The webhook was disabled for an hour: 30 updates and 30 deletes never arrived.
	t1 := t0.Add(time.Hour)
	for i := 0; i < 300; i += 10 {
		putPost(api, fmt.Sprintf("r%03d", i), "v2", int64(1000+i), t1)
		api.Delete(postsKey, fmt.Sprintf("r%03d", i+5))
	}
	j = waitJob(t, in.admin, startJob(t, in.admin, "main/posts", "incremental"), time.Minute)
	require.Equal(t, "succeeded", j.State, j.Error)
	require.EqualValues(t, 30, j.RowsChanged)
	waitDrained(t, state, time.Minute)
	got := warehouseRows(t, state)
	for i := 0; i < 300; i += 10 {
		require.Equal(t, "v2", got[fmt.Sprintf("r%03d", i)].Title, "updated row repaired")
		require.Contains(t, got, fmt.Sprintf("r%03d", i+5), "an incremental reconcile cannot see deletes")
	}

	j = waitJob(t, in.admin, startJob(t, in.admin, "main/posts", "full"), time.Minute)
	require.Equal(t, "succeeded", j.State, j.Error)
	require.EqualValues(t, 30, j.RowsDeleted)
	require.Zero(t, j.RowsChanged)
	waitDrained(t, state, time.Minute)
	requireWarehouseEqualsSource(t, state, api)
}

// TestBackfillAdminAPI covers the routes' answers through serve: 400 for tables no job may
// read, a clear reason for a table missing from the source, status of the probe, and 501
// without Appwrite credentials.
func TestBackfillAdminAPI(t *testing.T) {
	t.Parallel()
	api := appwritetest.New(appwritetest.Options{Version: "1.9.0", Start: time.Now().Add(-time.Hour)})
	t.Cleanup(api.Close)
	api.SetWebhook("wh1", false, 10)
	putPost(api, "r1", "v1", 1, api.Now())
	state := pgtest.NewMigratedDatabase(t, migrations.Up)
	in := startInstance(t, backfillConfig(t, state, bfConfig{endpoint: api.URL, reconcile: "{lease: 2s, webhook_ids: [wh1], probe_every: 100ms}"}))

	code, body := adminPost(t, in, "/admin/backfill", `{"table":"main/nope","mode":"full"}`)
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, body, "table main/nope is not mapped (mapped: main/posts, main/missing)")

	j := waitJob(t, in.admin, startJob(t, in.admin, "main/missing", "full"), time.Minute)
	require.Equal(t, "failed", j.State)
	require.Contains(t, j.Error, "404 table_not_found")
	require.Contains(t, j.Error, "table main/missing does not exist in project")

	var st struct {
		Webhooks struct {
			Supported bool `json:"supported"`
			Webhooks  map[string]struct {
				Enabled  *bool `json:"enabled"`
				Attempts int   `json:"attempts"`
			} `json:"webhooks"`
		} `json:"appwrite_webhooks"`
	}
	require.Eventually(t, func() bool {
		_, body := adminGet(t, in, "/admin/status")
		return json.Unmarshal([]byte(body), &st) == nil && st.Webhooks.Webhooks["wh1"].Enabled != nil
	}, 10*time.Second, 50*time.Millisecond)
	require.True(t, st.Webhooks.Supported)
	require.False(t, *st.Webhooks.Webhooks["wh1"].Enabled)
	require.Equal(t, 10, st.Webhooks.Webhooks["wh1"].Attempts)
	_, metricsText := adminGet(t, in, "/metrics")
	require.Contains(t, metricsText, `appwrite_sync_appwrite_webhook_enabled{webhook_id="wh1"} 0`)

	// Enabled again: every table is reconciled.
	api.SetWebhook("wh1", true, 0)
	require.Eventually(t, func() bool {
		_, body := adminGet(t, in, "/admin/backfill")
		return strings.Count(body, `"trigger":"probe"`) == 2
	}, 10*time.Second, 50*time.Millisecond)

	// Without credentials the routes answer 501.
	state2 := pgtest.NewMigratedDatabase(t, migrations.Up)
	cfg := testConfig(t, state2, state2, "")
	in2 := startInstance(t, cfg)
	code, body = adminPost(t, in2, "/admin/backfill", `{"table":"main/posts","mode":"full"}`)
	require.Equal(t, http.StatusNotImplemented, code, body)
}

// whTitles reads id → title from the warehouse (seeded rows have no views or author).
func whTitles(t testing.TB, url string) map[string]string {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT id, COALESCE(title, '') FROM wh.posts`)
	require.NoError(t, err)
	out := map[string]string{}
	for rows.Next() {
		var id, title string
		require.NoError(t, rows.Scan(&id, &title))
		out[id] = title
	}
	require.NoError(t, rows.Err())
	return out
}
