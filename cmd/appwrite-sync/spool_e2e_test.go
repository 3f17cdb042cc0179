package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector/sink/meilisink"
	"github.com/appwrite-sync/appwrite-sync/connector/spool"
	"github.com/appwrite-sync/appwrite-sync/internal/appwritetest"
	"github.com/appwrite-sync/appwrite-sync/internal/meilitest"
	"github.com/appwrite-sync/appwrite-sync/internal/pgtest"
)

// meiliWrites is a Meilisearch double behind a proxy that records, per document id, the views
// of every accepted document write in the order Meilisearch received them (it applies an
// index's tasks in that order).
type meiliWrites struct {
	srv *meilitest.Server
	url string
	mu  sync.Mutex
	ids map[string][]int64
}

func newMeiliWrites(t *testing.T) *meiliWrites {
	m := &meiliWrites{srv: meilitest.NewUnstarted(meilitest.Options{}), ids: map[string][]int64{}}
	t.Cleanup(m.srv.Close)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/documents") {
			m.srv.ServeHTTP(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := httptest.NewRecorder()
		m.srv.ServeHTTP(rec, r)
		if rec.Code == http.StatusAccepted {
			var docs []struct {
				ID    string `json:"$id"`
				Views int64  `json:"views"`
			}
			if json.Unmarshal(body, &docs) == nil {
				m.mu.Lock()
				for _, d := range docs {
					m.ids[d.ID] = append(m.ids[d.ID], d.Views)
				}
				m.mu.Unlock()
			}
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	}))
	t.Cleanup(proxy.Close)
	m.url = proxy.URL
	return m
}

// stream posts webhooks one after the other until stop is closed: row i%rows, version i (its
// $updatedAt and views grow with i). It returns every answer's status and the last version
// posted per row.
type stream struct {
	mu    sync.Mutex
	codes map[int]int
	last  map[string]int64
	n     int
}

func runStream(t *testing.T, base string, rows int, stop <-chan struct{}, every time.Duration) (*stream, <-chan struct{}) {
	s := &stream{codes: map[int]int{}, last: map[string]int64{}}
	done := make(chan struct{})
	start := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			id := fmt.Sprintf("s%d", i%rows)
			code := postQuiet(base, id, event{"update", rowBody(id, start.Add(time.Duration(i)*time.Millisecond), fmt.Sprintf("v%d", i), int64(i), "a")})
			s.mu.Lock()
			s.codes[code]++
			if code == http.StatusOK {
				s.last[id] = int64(i)
			}
			s.n++
			s.mu.Unlock()
		}
	}()
	return s, done
}

func (s *stream) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// postQuiet is post without a testing.TB (it runs on a goroutine of its own).
func postQuiet(base, id string, e event) int {
	req, err := http.NewRequest(http.MethodPost, base+"/webhooks/appwrite", bytes.NewReader(e.body))
	if err != nil {
		return -1
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Appwrite-Webhook-Events", e.eventName(id)+",databases.*.tables.*.rows.*."+e.action)
	req.Header.Set("X-Appwrite-Webhook-Signature", sign(webhookURL, e.body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func readyzCode(t *testing.T, base string) int {
	resp, err := http.Get(base + "/readyz")
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// The state store restarts (down for seconds) under a steady stream of webhooks: with the
// spool every one is answered 200, /readyz stays ready and /admin/status shows the spool, and
// after recovery both sinks hold every acknowledged row at its last version, having received
// each row's versions in increasing order.
func TestStateStoreRestartUnderStreamWithSpool(t *testing.T) {
	stCluster, err := pgtest.StartCluster()
	require.NoError(t, err)
	defer stCluster.Stop()
	state := pgtest.NewDatabaseOn(t, stCluster)
	wh := pgtest.NewDatabase(t)
	meili := newMeiliWrites(t)
	cfg := meiliConfig(t, state, wh, meili.url, meiliOpts{})
	cfg.State.SpoolDir = t.TempDir()
	in := startInstance(t, cfg)

	// Every write of a warehouse row, in commit order, to check the per-row order.
	require.Equal(t, 200, post(t, in.base, "s0", event{"create", rowBody("s0", time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC), "first", 0, "a")}))
	waitDrained(t, state, 20*time.Second)
	ctx := context.Background()
	whConn, err := pgx.Connect(ctx, wh)
	require.NoError(t, err)
	defer whConn.Close(ctx)
	_, err = whConn.Exec(ctx, `CREATE TABLE wh.posts_writes (seq bigserial PRIMARY KEY, id text, views bigint);
        CREATE FUNCTION wh.log_write() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN INSERT INTO wh.posts_writes (id, views) VALUES (NEW.id, NEW.views); RETURN NEW; END $$;
        CREATE TRIGGER log_write AFTER INSERT OR UPDATE ON wh.posts FOR EACH ROW EXECUTE FUNCTION wh.log_write();`)
	require.NoError(t, err)

	stop := make(chan struct{})
	s, done := runStream(t, in.base, 10, stop, 3*time.Millisecond)
	require.Eventually(t, func() bool { return s.count() >= 50 }, 10*time.Second, 5*time.Millisecond)
	// Healthy, the spool costs nothing: no write to its file.
	fi, err := os.Stat(filepath.Join(cfg.State.SpoolDir, spool.FileName))
	require.NoError(t, err)
	require.EqualValues(t, 9, fi.Size(), "only the header")
	_, m := adminGet(t, in, "/metrics")
	require.Contains(t, m, "appwrite_sync_spool_appended_total 0")
	stCluster.StopServer()
	before := s.count()
	require.Eventually(t, func() bool {
		code, body := adminGet(t, in, "/admin/status")
		return code == http.StatusServiceUnavailable && strings.Contains(body, `"state":"spooling"`)
	}, 10*time.Second, 20*time.Millisecond, "status must show the spool taking webhooks (and answer 503: the state store is down)")
	require.Equal(t, http.StatusOK, readyzCode(t, in.base), "ready while the spool takes the webhooks")
	downFor := 3 * time.Second
	time.Sleep(downFor) // the outage itself: the stream keeps posting meanwhile
	_, body := adminGet(t, in, "/admin/status")
	var st struct {
		Spool struct {
			Changes int64   `json:"changes"`
			Bytes   int64   `json:"bytes"`
			Age     float64 `json:"oldest_age_seconds"`
		} `json:"spool"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &st), body)
	require.Positive(t, st.Spool.Changes, body)
	require.Positive(t, st.Spool.Bytes, body)
	require.Greater(t, st.Spool.Age, 1.0, body)
	require.Greater(t, s.count()-before, 100, "the stream kept going during the outage")
	require.NoError(t, stCluster.Restart())
	after := s.count()
	require.Eventually(t, func() bool { return s.count() >= after+100 }, 20*time.Second, 10*time.Millisecond)
	close(stop)
	<-done

	s.mu.Lock()
	require.Equal(t, map[int]int{http.StatusOK: s.n}, s.codes, "every webhook is answered 200")
	last := s.last
	s.mu.Unlock()
	require.Eventually(t, func() bool {
		code, body := adminGet(t, in, "/admin/status")
		return code == 200 && strings.Contains(body, `"state":"idle"`)
	}, 20*time.Second, 20*time.Millisecond, "the spool drains once the state store is back")
	waitDrained(t, state, 30*time.Second)

	got := warehouseRows(t, wh)
	docs := meili.srv.Documents("posts")
	for id, v := range last {
		require.Equal(t, v, got[id].Views, "warehouse row %s", id)
		require.Equal(t, float64(v), docs[meilisink.EncodeID(id)]["views"], "index document %s", id)
	}
	rows, err := whConn.Query(ctx, `SELECT id, views FROM wh.posts_writes ORDER BY seq`)
	require.NoError(t, err)
	seen := map[string]int64{}
	for rows.Next() {
		var id string
		var v int64
		require.NoError(t, rows.Scan(&id, &v))
		require.GreaterOrEqual(t, v, seen[id], "warehouse row %s went back from version %d to %d", id, seen[id], v)
		seen[id] = v
	}
	require.NoError(t, rows.Err())
	meili.mu.Lock()
	defer meili.mu.Unlock()
	for id, vs := range meili.ids {
		for i := 1; i < len(vs); i++ {
			require.GreaterOrEqual(t, vs[i], vs[i-1], "index document %s went back: %v", id, vs)
		}
	}
}

// Without a spool, changes refused while the state store is down are repaired once it is
// back by an incremental reconcile from the Appwrite API that nobody started; status says
// which tables wait for it meanwhile.
func TestRefusedChangesRepairedAutomatically(t *testing.T) {
	stCluster, err := pgtest.StartCluster()
	require.NoError(t, err)
	defer stCluster.Stop()
	state := pgtest.NewDatabaseOn(t, stCluster)
	api := newAppwrite(t)
	t0 := api.Now()
	for i := range 20 {
		putPost(api, fmt.Sprintf("r%02d", i), "v1", int64(i), t0)
	}
	in := startInstance(t, backfillConfig(t, state, bfConfig{endpoint: api.URL}))
	for i := range 20 {
		id := fmt.Sprintf("r%02d", i)
		require.Equal(t, 200, post(t, in.base, id, event{"create", rowBody(id, t0, "v1", int64(i), "Ada")}))
	}
	waitDrained(t, state, 20*time.Second)

	stCluster.StopServer()
	t1 := t0.Add(time.Minute)
	for i := range 5 {
		id := fmt.Sprintf("r%02d", i)
		putPost(api, id, "v2", int64(100+i), t1)
		require.Equal(t, http.StatusServiceUnavailable, post(t, in.base, id, event{"update", rowBody(id, t1, "v2", int64(100+i), "Ada")}))
	}
	code, body := adminGet(t, in, "/admin/status")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body, `"refused_since":{"main/posts":`)
	require.Contains(t, body, `"enabled":false`)

	require.NoError(t, stCluster.Restart())
	require.Eventually(t, func() bool {
		got := warehouseRows(t, state)
		for i := range 5 {
			if got[fmt.Sprintf("r%02d", i)].Title != "v2" {
				return false
			}
		}
		return true
	}, 30*time.Second, 50*time.Millisecond, "the refused changes are repaired without anyone starting a job")
	waitDrained(t, state, 20*time.Second)
	requireWarehouseEqualsSource(t, state, api)
	code, body = adminGet(t, in, "/admin/backfill")
	require.Equal(t, 200, code, body)
	require.Contains(t, body, `"trigger":"repair"`)
	_, body = adminGet(t, in, "/admin/status")
	require.Contains(t, body, `"refused_since":{}`)
	_, metrics := adminGet(t, in, "/metrics")
	require.Contains(t, metrics, "appwrite_sync_repair_jobs_total 1")
	require.Contains(t, metrics, `appwrite_sync_refused_changes_total{reason="spool_off"} 5`)
}

// With reconcile.reenable_webhooks, a webhook Appwrite disabled is enabled again by the probe
// and the changes Appwrite dropped meanwhile are read back by a reconcile nobody started.
func TestDisabledWebhookReenabledAndRepaired(t *testing.T) {
	scopes := append(append([]string(nil), appwritetest.DefaultScopes...), "webhooks.write")
	api := appwritetest.New(appwritetest.Options{Version: "1.9.0", Scopes: scopes, Start: time.Now().Add(-48 * time.Hour)})
	t.Cleanup(api.Close)
	t0 := api.Now()
	for i := range 10 {
		putPost(api, fmt.Sprintf("r%02d", i), "v1", int64(i), t0)
	}
	api.SetWebhook("wh1", true, 0)
	state := pgtest.NewDatabase(t)
	in := startInstance(t, backfillConfig(t, state, bfConfig{endpoint: api.URL,
		reconcile: "{lease: 2s, webhook_ids: [wh1], probe_every: 100ms, reenable_webhooks: true}"}))
	for i := range 10 {
		id := fmt.Sprintf("r%02d", i)
		require.Equal(t, 200, post(t, in.base, id, event{"create", rowBody(id, t0, "v1", int64(i), "Ada")}))
	}
	// Appwrite disables the webhook; the changes made meanwhile are never delivered.
	api.Advance(time.Minute)
	api.SetWebhook("wh1", false, 10)
	for i := range 3 {
		putPost(api, fmt.Sprintf("r%02d", i), "dropped", int64(100+i), api.Now())
	}
	require.Eventually(t, func() bool {
		wh, _ := api.Webhook("wh1")
		return wh.Enabled
	}, 20*time.Second, 20*time.Millisecond, "the probe enables the webhook again")
	require.Eventually(t, func() bool {
		got := warehouseRows(t, state)
		return got["r00"].Title == "dropped" && got["r02"].Title == "dropped"
	}, 30*time.Second, 50*time.Millisecond, "the dropped changes are read back")
	waitDrained(t, state, 20*time.Second)
	requireWarehouseEqualsSource(t, state, api)
	_, m := adminGet(t, in, "/metrics")
	require.Contains(t, m, `appwrite_sync_appwrite_webhook_reenabled_total{webhook_id="wh1"} 1`)
}
