package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector/config"
	"github.com/appwrite-sync/appwrite-sync/connector/webhook"
	"github.com/appwrite-sync/appwrite-sync/internal/pgtest"
	"github.com/appwrite-sync/appwrite-sync/migrations"
)

func TestMain(m *testing.M) {
	code := pgtest.Run(m)
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

const (
	testSecret = "3f1c0ffee0ddba11deadbeefcafe5eed"
	testToken  = "admin-token-0123456789abcdef"
	webhookURL = "https://sync.example.com/webhooks/appwrite"
)

// testConfig renders a config for a test instance.
func testConfig(t *testing.T, stateURL, warehouseURL string, extra string) *config.Config {
	t.Helper()
	ports, err := pgtest.FreePorts(2)
	require.NoError(t, err)
	port, aport := ports[0], ports[1]
	text := fmt.Sprintf(`
listen: "127.0.0.1:%d"
admin: {listen: "127.0.0.1:%d", token: %q}
webhooks:
  - url: %q
    signing_keys: [%q]
state: {database_url: %q, group_commit_wait: 1ms}
warehouse: {database_url: %q, schema: wh, batch_size: 200}
delivery: {lease: 5s, poll_interval: 20ms, max_backoff: 500ms}
server: {shutdown_timeout: 5s, drain_delay: 0s}
log: {level: warn, format: text}
tables:
  - database: main
    table: posts
    postgres:
      table: posts
      columns:
        title: text
        views: bigint
        author_name: {from: author.name, type: text}
%s`, port, aport, testToken, webhookURL, testSecret, stateURL, warehouseURL, extra)
	cfg, err := config.Parse("test.yaml", []byte(text), func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	return cfg
}

// writeBinaryConfig writes the config of a serve run as a real process: webhooks at listen
// (host:port), state and warehouse in the database at state, the posts table warehoused, no
// admin listener, and extra (top-level YAML lines such as delivery:, log:, server:).
func writeBinaryConfig(t *testing.T, path, listen, state, extra string) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, []byte(fmt.Sprintf(`
listen: %q
admin: {listen: ""}
webhooks:
  - url: %q
    signing_keys: [%q]
state: {database_url: %q}
warehouse: {schema: wh}
%s
tables:
  - database: main
    table: posts
    postgres:
      table: posts
      columns: {title: text, views: bigint, author_name: {from: author.name, type: text}}
`, listen, webhookURL, testSecret, state, extra)), 0o600))
}

// instance is one running serve, in-process.
type instance struct {
	cfg    *config.Config
	base   string
	admin  string
	cancel context.CancelFunc
	done   chan error
}

func startInstance(t *testing.T, cfg *config.Config) *instance {
	t.Helper()
	return startInstanceLog(t, cfg, nil)
}

// startInstanceLog is startInstance with the service's log (debug level) written to w.
func startInstanceLog(t *testing.T, cfg *config.Config, w io.Writer) *instance {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	_, err := migrations.Up(ctx, cfg.State.DatabaseURL)
	require.NoError(t, err)
	l := logrus.New()
	l.SetOutput(io.Discard)
	if os.Getenv("TEST_LOG") != "" {
		l.SetOutput(os.Stderr)
		l.SetLevel(logrus.DebugLevel)
	}
	if w != nil {
		l.SetOutput(w)
		l.SetLevel(logrus.DebugLevel)
		l.SetFormatter(&logrus.JSONFormatter{})
	}
	a, err := build(ctx, cfg, logrus.NewEntry(l))
	require.NoError(t, err)
	in := &instance{cfg: cfg, base: "http://" + cfg.Listen, admin: "http://" + cfg.Admin.Listen, cancel: cancel, done: make(chan error, 1)}
	go func() { in.done <- a.run(ctx); a.close() }()
	require.Eventually(t, func() bool {
		resp, err := http.Get(in.base + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}, 10*time.Second, 20*time.Millisecond)
	// The admin listener starts on its own: a test calling the admin API right away would
	// otherwise race it (connection refused).
	if cfg.Admin.Listen != "" {
		require.Eventually(t, func() bool {
			c, err := net.Dial("tcp", cfg.Admin.Listen)
			if err != nil {
				return false
			}
			c.Close()
			return true
		}, 10*time.Second, 20*time.Millisecond)
	}
	t.Cleanup(in.stop)
	return in
}

func (in *instance) stop() {
	if in.cancel == nil {
		return
	}
	in.cancel()
	<-in.done
	in.cancel = nil
}

func sign(url string, body []byte) string { return webhook.Sign(url, testSecret, body) }

// event is one Appwrite row webhook.
type event struct {
	action string
	body   []byte
}

func (e event) eventName(id string) string {
	return fmt.Sprintf("databases.main.tables.posts.rows.%s.%s", id, e.action)
}

func post(t testing.TB, base string, id string, e event) int {
	status, _ := postBody(t, base, id, e)
	return status
}

// postBody is post, returning the answer's body too.
func postBody(t testing.TB, base string, id string, e event) (int, string) {
	req, err := http.NewRequest(http.MethodPost, base+"/webhooks/appwrite", bytes.NewReader(e.body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Appwrite-Webhook-Events", e.eventName(id)+",databases.*.tables.*.rows.*."+e.action)
	req.Header.Set("X-Appwrite-Webhook-Signature", sign(webhookURL, e.body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b)
}

func rowBody(id string, updated time.Time, title string, views int64, author string) []byte {
	return []byte(fmt.Sprintf(`{"$id":%q,"$sequence":"%d","$databaseId":"main","$tableId":"posts","$createdAt":"2026-01-01T00:00:00.000+00:00","$updatedAt":%q,"$permissions":["read(\"any\")"],"title":%q,"views":%d,"author":{"$id":"a1","name":%q}}`,
		id, views, updated.UTC().Format("2006-01-02T15:04:05.000+00:00"), title, views, author))
}

// adminGet calls the admin API.
func adminGet(t testing.TB, in *instance, path string) (int, string) {
	return adminCall(t, in.admin, http.MethodGet, path, "")
}

func init() { gaugeEvery = time.Second }

// drainedSQL is 0 once every sink's cursor is at the end of the log and no retry is waiting,
// 1 before, -1 before any sink registered: index probes only, so polling it does not load the
// database a benchmark measures (counting a million entries takes a core's 200 ms).
const drainedSQL = `SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM appwrite_sync.sink_cursor) THEN -1
    WHEN EXISTS (SELECT 1 FROM appwrite_sync.sink_cursor c
            WHERE EXISTS (SELECT 1 FROM appwrite_sync.ledger l WHERE (l.tx, l.seq) > (c.tx, c.seq)))
        OR EXISTS (SELECT 1 FROM appwrite_sync.sink_retry WHERE dead_at IS NULL) THEN 1
    ELSE 0 END`

// waitDrained waits until no sink has pending rows.
func waitDrained(t *testing.T, stateURL string, timeout time.Duration) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, stateURL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	require.Eventually(t, func() bool {
		var n int
		if err := conn.QueryRow(ctx, drainedSQL).Scan(&n); err != nil {
			return false
		}
		return n == 0
	}, timeout, 50*time.Millisecond)
}

type whRow struct {
	Title   string
	Views   int64
	Author  string
	Updated time.Time
}

func warehouseRows(t *testing.T, url string) map[string]whRow {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT id, title, views, author_name, updated_at FROM wh.posts`)
	require.NoError(t, err)
	out := map[string]whRow{}
	for rows.Next() {
		var id string
		var r whRow
		require.NoError(t, rows.Scan(&id, &r.Title, &r.Views, &r.Author, &r.Updated))
		out[id] = r
	}
	require.NoError(t, rows.Err())
	return out
}
