package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/connector/config"
	"github.com/appwrite-sync/appwrite-sync/connector/sink/meilisink"
	"github.com/appwrite-sync/appwrite-sync/internal/meilitest"
	"github.com/appwrite-sync/appwrite-sync/internal/pgtest"
)

// meiliPoison in a row's title makes the Meilisearch task carrying it fail (see newMeili).
const meiliPoison = "POISON-7c1e"

// meiliPoisonCode is what the poisoned tasks fail with: Meilisearch's code for a document
// value it cannot read.
const meiliPoisonCode = "invalid_document_geo_field"

// meiliDouble is the Meilisearch double behind a small test proxy. The proxy
//   - tags a document write whose body holds meiliPoison with customMetadata=poison, and the
//     double fails tagged tasks (a row with a value that makes its task fail: no field of the
//     test mapping can make a real server refuse a document);
//   - answers 503 to everything while down is set (Meilisearch not started yet);
//   - when tracking, records which task carried each document, to time freshness.
//
// Everything else is the double's own behaviour.
type meiliDouble struct {
	srv  *meilitest.Server
	url  string
	down atomic.Bool

	track    atomic.Bool
	mu       sync.Mutex
	carriers map[string][]int64 // "$id" → uids of the addition tasks that carried it
}

func newMeili(t testing.TB, opts meilitest.Options) *meiliDouble {
	t.Helper()
	d := &meiliDouble{srv: meilitest.NewUnstarted(opts), carriers: map[string][]int64{}}
	t.Cleanup(d.srv.Close)
	d.srv.FailTasksMatching(func(tk meilitest.Task) bool { return tk.CustomMetadata == "poison" }, meiliPoisonCode)
	proxy := httptest.NewServer(http.HandlerFunc(d.serve))
	t.Cleanup(proxy.Close)
	d.url = proxy.URL
	return d
}

func (d *meiliDouble) serve(w http.ResponseWriter, r *http.Request) {
	if d.down.Load() {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"message":"starting","code":"internal","type":"internal","link":"https://docs.meilisearch.com/errors#internal"}`)
		return
	}
	isAdd := r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/documents")
	if !isAdd || r.Body == nil {
		d.srv.ServeHTTP(w, r)
		return
	}
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	if bytes.Contains(body, []byte(meiliPoison)) {
		q := r.URL.Query()
		q.Set("customMetadata", "poison")
		r.URL.RawQuery = q.Encode()
	}
	if !d.track.Load() {
		d.srv.ServeHTTP(w, r)
		return
	}
	r.Header.Del("Accept-Encoding") // read the answer as plain JSON
	c := &capture{ResponseWriter: w}
	d.srv.ServeHTTP(c, r)
	var docs []map[string]json.RawMessage
	var info struct {
		TaskUID int64 `json:"taskUid"`
	}
	if c.status == http.StatusAccepted && json.Unmarshal(body, &docs) == nil && json.Unmarshal(c.buf.Bytes(), &info) == nil {
		d.mu.Lock()
		for _, doc := range docs {
			var id string
			_ = json.Unmarshal(doc["$id"], &id)
			d.carriers[id] = append(d.carriers[id], info.TaskUID)
		}
		d.mu.Unlock()
	}
}

// appliedAt returns when the first succeeded task carrying the document with this $id
// finished.
func (d *meiliDouble) appliedAt(id string) (time.Time, bool) {
	d.mu.Lock()
	uids := append([]int64(nil), d.carriers[id]...)
	d.mu.Unlock()
	for _, uid := range uids {
		if tk, ok := d.srv.Task(uid); ok && tk.Status == meilitest.TaskSucceeded {
			return tk.FinishedAt, true
		}
	}
	return time.Time{}, false
}

// capture records an answer while writing it through; it keeps http.Hijacker so the double's
// dropped-connection faults still work.
type capture struct {
	http.ResponseWriter
	status int
	buf    bytes.Buffer
}

func (c *capture) WriteHeader(s int) { c.status = s; c.ResponseWriter.WriteHeader(s) }

func (c *capture) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	c.buf.Write(b)
	return c.ResponseWriter.Write(b)
}

func (c *capture) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return c.ResponseWriter.(http.Hijacker).Hijack()
}

// meiliOpts tunes meiliConfig.
type meiliOpts struct {
	// Meili holds extra keys of the top-level meilisearch section, e.g. "batch_size: 50".
	Meili string
	// Delivery replaces the delivery section (default: 5 s lease, 20 ms poll, 500 ms backoff).
	Delivery string
	// NoWarehouse leaves the postgres section out: only the index is written.
	NoWarehouse bool
}

// meiliConfig is testConfig with the posts table also indexed in Meilisearch at meiliURL.
func meiliConfig(t testing.TB, stateURL, warehouseURL, meiliURL string, o meiliOpts) *config.Config {
	t.Helper()
	ports, err := pgtest.FreePorts(2)
	require.NoError(t, err)
	port, aport := ports[0], ports[1]
	delivery := o.Delivery
	if delivery == "" {
		delivery = "{lease: 5s, poll_interval: 20ms, max_backoff: 500ms}"
	}
	pg := `
    postgres:
      table: posts
      columns:
        title: text
        views: bigint
        author_name: {from: author.name, type: text}`
	if o.NoWarehouse {
		pg = ""
	}
	text := fmt.Sprintf(`
listen: "127.0.0.1:%d"
admin: {listen: "127.0.0.1:%d", token: %q}
webhooks:
  - url: %q
    signing_keys: [%q]
state: {database_url: %q, group_commit_wait: 1ms}
warehouse: {database_url: %q, schema: wh, batch_size: 200}
meilisearch: {url: %q, timeout: 5s, %s}
delivery: %s
server: {shutdown_timeout: 5s, drain_delay: 0s}
log: {level: warn, format: text}
tables:
  - database: main
    table: posts
    meilisearch:
      index: posts
      fields: [title, views, {author_name: author.name}]
      filterable: [views]
      sortable: [views]%s
`, port, aport, testToken, webhookURL, testSecret, stateURL, warehouseURL, meiliURL, o.Meili, delivery, pg)
	cfg, err := config.Parse("test.yaml", []byte(text), func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	return cfg
}

// indexEqualsTruth checks that the posts index holds exactly the live rows of the ground
// truth, each with its newest values, under its encoded id.
func indexEqualsTruth(t *testing.T, srv *meilitest.Server, truth map[string]*histEvent) {
	t.Helper()
	docs := srv.Documents("posts")
	live := 0
	for id, e := range truth {
		doc, present := docs[meilisink.EncodeID(id)]
		if e.version.Op == connector.OpDelete {
			require.False(t, present, "deleted row %s must not be in the index", id)
			continue
		}
		live++
		require.True(t, present, "row %s must be in the index", id)
		require.Equal(t, id, doc["$id"], id)
		require.Equal(t, e.title, doc["title"], id)
		require.Equal(t, float64(e.views), doc["views"], id)
		require.Equal(t, e.author, doc["author_name"], id)
	}
	require.Equal(t, live, len(docs), "the index holds documents the source does not")
}
