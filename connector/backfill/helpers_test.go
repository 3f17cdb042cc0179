package backfill_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/connector/admin"
	"github.com/appwrite-sync/appwrite-sync/connector/appwrite"
	"github.com/appwrite-sync/appwrite-sync/connector/backfill"
	"github.com/appwrite-sync/appwrite-sync/connector/config"
	"github.com/appwrite-sync/appwrite-sync/connector/ledger"
	"github.com/appwrite-sync/appwrite-sync/connector/metrics"
	"github.com/appwrite-sync/appwrite-sync/internal/appwritetest"
	"github.com/appwrite-sync/appwrite-sync/internal/pgtest"
	"github.com/appwrite-sync/appwrite-sync/mapping"
	"github.com/appwrite-sync/appwrite-sync/migrations"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.ReleaseMode)
	pgtest.Main(m)
}

var posts = connector.TableKey{Database: "main", Table: "posts"}

const adminToken = "backfill-test-admin-token"

// testMapping maps main/posts (a relationship path included), main/ghost (absent from the
// source) and */any (database wildcard).
func testMapping(t *testing.T) *mapping.Mapping {
	t.Helper()
	text := `
admin: {listen: ""}
webhooks: [{url: "https://sync.example.com/hook", signing_keys: [k]}]
state: {database_url: "postgres://localhost/x"}
tables:
  - database: main
    table: posts
    postgres: {table: posts, columns: {title: text, views: bigint, author_name: {from: author.name, type: text}}}
  - database: main
    table: ghost
    postgres: {table: ghost, columns: {title: text}}
  - database: "*"
    table: any
    postgres: {table: anyt, columns: {title: text}}
`
	cfg, err := config.Parse("test.yaml", []byte(text), func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	return cfg.Mapping
}

// bundle is one test's world: a state store, the Appwrite double, a client, a recorder, a
// manager (running unless told otherwise) and the admin API over it.
type bundle struct {
	t       *testing.T
	url     string
	pool    *pgxpool.Pool
	api     *appwritetest.Server
	client  *appwrite.Client
	rec     *ledger.Recorder
	metrics *metrics.Metrics
	mapping *mapping.Mapping
	m       *backfill.Manager
	admin   *httptest.Server
	stop    func() // stops the manager's Run; safe twice
	lists   atomic.Int64
}

// resetProxyCount restarts the proxy's count of list requests.
func (b *bundle) resetProxyCount() { b.lists.Store(0) }

type setupOpts struct {
	api       appwritetest.Options
	client    func(*appwrite.Options)
	manager   func(*backfill.Options)
	noRun     bool
	sharedURL string // reuse another bundle's state store
	// proxy, when set, puts a proxy between the client and the double that calls it before
	// forwarding each list request (n counts them from 1).
	proxy func(r *http.Request, n int64)
	// history keeps the row history of every table (postgres.history).
	history bool
}

func testLog() *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	if os.Getenv("TEST_LOG") != "" {
		l.SetOutput(os.Stderr)
		l.SetLevel(logrus.DebugLevel)
	}
	return logrus.NewEntry(l)
}

func setup(t *testing.T, o setupOpts) *bundle {
	t.Helper()
	ctx := context.Background()
	b := &bundle{t: t, metrics: metrics.New(), mapping: testMapping(t)}
	b.url = o.sharedURL
	if b.url == "" {
		b.url = pgtest.NewMigratedDatabase(t, migrations.Up)
	}
	var err error
	b.pool, err = ledger.OpenPool(ctx, b.url, 10)
	require.NoError(t, err)
	t.Cleanup(b.pool.Close)
	if o.api.Start.IsZero() {
		// The double's clock stays behind the state store's, as a healthy Appwrite's would.
		o.api.Start = time.Now().Add(-48 * time.Hour).UTC().Truncate(time.Millisecond)
	}
	b.api = appwritetest.New(o.api)
	t.Cleanup(b.api.Close)
	endpoint := b.api.URL
	if o.proxy != nil {
		target, _ := url.Parse(b.api.URL)
		rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: target.Scheme, Host: target.Host})
		ps := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/rows") {
				o.proxy(r, b.lists.Add(1))
			}
			rp.ServeHTTP(w, r)
		}))
		t.Cleanup(ps.Close)
		endpoint = ps.URL + "/v1"
	}
	co := appwrite.Options{Endpoint: endpoint, Project: appwritetest.ProjectDefault, APIKey: appwritetest.APIKeyDefault,
		PageSize: 100, InitialBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, MaxRetries: 3,
		RequestTimeout: 5 * time.Second, MaxElapsed: 10 * time.Second, Logger: testLog()}
	if o.client != nil {
		o.client(&co)
	}
	b.client, err = appwrite.New(co)
	require.NoError(t, err)
	ro := ledger.RecorderOptions{Log: testLog(), Metrics: b.metrics}
	if o.history {
		ro.History = func(connector.TableKey) (ledger.HistoryPolicy, bool) { return ledger.HistoryPolicy{}, true }
	}
	b.rec = ledger.NewRecorder(b.pool, ro)
	t.Cleanup(b.rec.Close)
	mo := backfill.Options{Client: b.client, Recorder: b.rec, Mapping: b.mapping, Lease: 2 * time.Second, Skew: backfill.SkewDefault,
		PollInterval: 50 * time.Millisecond, RetryBackoff: 50 * time.Millisecond, MaxAttempts: 2, Metrics: b.metrics, Log: testLog()}
	if o.manager != nil {
		o.manager(&mo)
	}
	b.m, err = backfill.New(b.pool, mo)
	require.NoError(t, err)
	b.stop = func() {}
	if !o.noRun {
		b.run()
	}
	b.admin = httptest.NewServer(admin.Router(admin.Options{Token: adminToken, Ledger: ledger.NewAdmin(b.pool),
		Backfill: b.m, Metrics: b.metrics, Log: testLog()}))
	t.Cleanup(b.admin.Close)
	return b
}

// run starts the manager's Run; b.stop stops it and waits.
func (b *bundle) run() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.m.Run(ctx); close(done) }()
	var once sync.Once
	b.stop = func() { once.Do(func() { cancel(); <-done }) }
	b.t.Cleanup(b.stop)
}

// call sends an admin request and decodes the JSON answer.
func (b *bundle) call(method, path, body string) (int, map[string]any) {
	b.t.Helper()
	req, err := http.NewRequest(method, b.admin.URL+path, strings.NewReader(body))
	require.NoError(b.t, err)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(b.t, err)
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	require.NoError(b.t, json.Unmarshal(raw, &out), string(raw))
	return resp.StatusCode, out
}

// start posts a job through the admin API and returns its id.
func (b *bundle) start(table, mode string) string {
	b.t.Helper()
	code, out := b.call(http.MethodPost, "/admin/backfill", fmt.Sprintf(`{"table":%q,"mode":%q}`, table, mode))
	require.Equal(b.t, http.StatusAccepted, code, out)
	return out["id"].(string)
}

// job reads the job through GET /admin/backfill/{id}.
func (b *bundle) job(id string) backfill.Job {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.admin.URL+"/admin/backfill/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(b.t, err)
	defer resp.Body.Close()
	require.Equal(b.t, http.StatusOK, resp.StatusCode)
	var j backfill.Job
	require.NoError(b.t, json.NewDecoder(resp.Body).Decode(&j))
	return j
}

// wait waits until the job's state is final and returns it.
func (b *bundle) wait(id string, timeout time.Duration) backfill.Job {
	b.t.Helper()
	var j backfill.Job
	require.Eventually(b.t, func() bool {
		j = b.job(id)
		return j.State.Done()
	}, timeout, 20*time.Millisecond, "job %s did not end", id)
	return j
}

// ledgerRow is what the ledger holds for one row.
type ledgerRow struct {
	Op        connector.Op
	UpdatedAt time.Time
	Title     string
	Action    string
}

func (b *bundle) ledger(key connector.TableKey) map[string]ledgerRow {
	b.t.Helper()
	rows, err := b.pool.Query(context.Background(), `SELECT row_id, op, updated_at, COALESCE((`+ledger.SourceSQL+`)::json->>'title', ''), action
        FROM appwrite_sync.ledger l WHERE table_key = $1`, key.String())
	require.NoError(b.t, err)
	defer rows.Close()
	out := map[string]ledgerRow{}
	for rows.Next() {
		var id string
		var r ledgerRow
		var op int16
		require.NoError(b.t, rows.Scan(&id, &op, &r.UpdatedAt, &r.Title, &r.Action))
		r.Op = connector.Op(op)
		out[id] = r
	}
	require.NoError(b.t, rows.Err())
	return out
}

// live returns the ledger's live rows (op upsert) as id → title.
func (b *bundle) live(key connector.TableKey) map[string]string {
	out := map[string]string{}
	for id, r := range b.ledger(key) {
		if r.Op == connector.OpUpsert {
			out[id] = r.Title
		}
	}
	return out
}

// source returns the double's rows as id → title.
func (b *bundle) source(key connector.TableKey) map[string]string {
	out := map[string]string{}
	for _, raw := range b.api.Rows(key) {
		var r struct {
			ID    string `json:"$id"`
			Title string `json:"title"`
		}
		require.NoError(b.t, json.Unmarshal(raw, &r))
		out[r.ID] = r.Title
	}
	return out
}

// put writes a row to the double.
func (b *bundle) put(id, title string, updated time.Time) json.RawMessage {
	return b.api.Put(posts, map[string]any{"$id": id, "title": title, "views": 1, "author": map[string]any{"$id": "a1", "name": "Ada"},
		"$updatedAt": updated, "$permissions": []string{`read("any")`}})
}

// synced puts rows r000, r001, ... (n of them, title "v1", $updatedAt at) in the source and
// runs a full job that records them all.
func (b *bundle) synced(n int, at time.Time) {
	b.t.Helper()
	for i := range n {
		b.put(fmt.Sprintf("r%03d", i), "v1", at)
	}
	require.Equal(b.t, backfill.StateSucceeded, b.wait(b.start("main/posts", "full"), 30*time.Second).State)
}

// listRequests returns the list requests the double received for a table, in order.
func (b *bundle) listRequests(key connector.TableKey) []appwritetest.Request {
	var out []appwritetest.Request
	for _, r := range b.api.Requests() {
		if strings.HasSuffix(r.Path, "/tables/"+key.Table+"/rows") {
			out = append(out, r)
		}
	}
	return out
}

// afterSequence returns the greaterThan $sequence value of a list request ("" when none).
func afterSequence(r appwritetest.Request) string {
	for _, q := range r.Queries {
		var m struct {
			Method    string   `json:"method"`
			Attribute string   `json:"attribute"`
			Values    []string `json:"values"`
		}
		if json.Unmarshal([]byte(q), &m) == nil && m.Method == "greaterThan" && m.Attribute == "$sequence" && len(m.Values) == 1 {
			return m.Values[0]
		}
	}
	return ""
}

// counter reads a counter or gauge.
func counter(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}
