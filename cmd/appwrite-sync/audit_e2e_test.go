package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector/config"
	"github.com/appwrite-sync/appwrite-sync/internal/pgtest"
)

// auditConfig writes a config file with the posts table mapped and audit.events set, and
// loads it.
func auditConfig(t *testing.T, state, events string) (string, *config.Config) {
	t.Helper()
	return auditConfigWith(t, state, events, false, "")
}

// auditConfigWith is auditConfig with, when admin is set, an admin listener (token
// testToken), and postgresExtra added to the posts table's postgres section (e.g.
// "history: true").
func auditConfigWith(t *testing.T, state, events string, admin bool, postgresExtra string) (string, *config.Config) {
	t.Helper()
	ports, err := pgtest.FreePorts(2)
	require.NoError(t, err)
	adminSection := `admin: {listen: ""}`
	if admin {
		adminSection = fmt.Sprintf("admin: {listen: \"127.0.0.1:%d\", token: %q}", ports[1], testToken)
	}
	path := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(path, []byte(fmt.Sprintf(`
listen: "127.0.0.1:%d"
%s
webhooks:
  - url: %q
    signing_keys: [%q]
state: {database_url: %q, group_commit_wait: 1ms}
warehouse: {schema: wh}
delivery: {poll_interval: 20ms}
server: {shutdown_timeout: 5s, drain_delay: 0s}
log: {level: warn, format: text}
audit:
  events: %s
tables:
  - database: main
    table: posts
    postgres:
      table: posts
      columns: {title: text, views: bigint, author_name: {from: author.name, type: text}}
      %s
`, ports[0], adminSection, webhookURL, testSecret, state, events, postgresExtra)), 0o600))
	cfg, err := config.Load(path)
	require.NoError(t, err)
	return path, cfg
}

// postEvents posts body with the events header as Appwrite would, as user (the acting user's
// id, "" for an API key).
func postEvents(t *testing.T, base, events, user string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/webhooks/appwrite", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Appwrite-Webhook-Events", events)
	req.Header.Set("X-Appwrite-Webhook-Id", "wh1")
	req.Header.Set("X-Appwrite-Webhook-Project-Id", "proj")
	if user != "" {
		req.Header.Set("X-Appwrite-Webhook-User-Id", user)
	}
	req.Header.Set("X-Appwrite-Webhook-Signature", sign(webhookURL, body))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

const (
	auditUser = "users.u1.create,users.*.create,users.u1,users.*"
	auditFile = "buckets.b1.files.f1.create,buckets.*.files.f1.create,buckets.b1.files.*.create,buckets.*.files.*.create,buckets.b1.files.f1,buckets.b1.files.*,buckets.*.files.*,buckets.b1,buckets.*"
	auditTeam = "teams.t1.create,teams.*.create,teams.t1,teams.*"
)

func runCLI(args ...string) (int, string) {
	var out, errOut bytes.Buffer
	code := Run(context.Background(), args, &out, &errOut)
	return code, out.String() + errOut.String()
}

// Through serve: selected user and file events land in audit_log with their acting user and
// are answered as recorded; a not-selected event keeps today's answer and is not logged; a row
// change is both recorded and logged; a byte-identical redelivery is logged once. Then audit
// verify passes, fails naming the entry after an UPDATE of its payload, passes again once it
// is put back, and fails naming the entry after a DELETE before it.
func TestAuditLogThroughServeAndVerify(t *testing.T) {
	t.Parallel()
	state := pgtest.NewDatabase(t)
	path, cfg := auditConfig(t, state, `["users.*", "buckets.*.files.*", "databases.*.tables.*.rows.*"]`)
	code, out := runCLI("audit", "verify", "--config", path)
	require.Equal(t, exitFailure, code, out)
	require.Contains(t, out, "audit log wh.audit_log does not exist")
	in := startInstance(t, cfg)

	user := []byte(`{"$id":"u1","name":"Ada","email":"ada@example.com"}`)
	status, body := postEvents(t, in.base, auditUser, "u-admin", user)
	require.Equal(t, http.StatusOK, status)
	require.JSONEq(t, `{"recorded":true,"audit":true}`, body)
	status, body = postEvents(t, in.base, auditUser, "u-admin", user) // redelivery
	require.Equal(t, http.StatusOK, status)
	require.JSONEq(t, `{"recorded":true,"audit":true}`, body)
	status, body = postEvents(t, in.base, auditFile, "", []byte(`{"$id":"f1","bucketId":"b1","name":"a.png"}`))
	require.Equal(t, http.StatusOK, status)
	require.JSONEq(t, `{"recorded":true,"audit":true}`, body)
	status, body = postEvents(t, in.base, auditTeam, "u-admin", []byte(`{"$id":"t1"}`))
	require.Equal(t, http.StatusOK, status)
	require.JSONEq(t, `{"ignored":true,"reason":"teams.t1.create is not a row event"}`, body)
	row := rowBody("r1", time.Date(2026, 3, 26, 10, 0, 0, 0, time.UTC), "hello", 1, "a")
	status, body = postEvents(t, in.base, "databases.main.tables.posts.rows.r1.update,databases.*.tables.*.rows.*.update,databases.*.tables.*.rows.*", "u-editor", row)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, `{"recorded":true,"result":"new"}`, body)

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, state)
	require.NoError(t, err)
	defer conn.Close(ctx)
	require.Eventually(t, func() bool {
		var n int
		return conn.QueryRow(ctx, `SELECT count(*) FROM wh.audit_log`).Scan(&n) == nil && n == 3
	}, 10*time.Second, 20*time.Millisecond)
	rows, err := conn.Query(ctx, `SELECT seq, event, COALESCE(user_id, ''), payload->>'$id' FROM wh.audit_log ORDER BY seq`)
	require.NoError(t, err)
	var got []string
	for rows.Next() {
		var seq int64
		var ev, u, id string
		require.NoError(t, rows.Scan(&seq, &ev, &u, &id))
		got = append(got, fmt.Sprintf("%d %s %s %s", seq, ev, u, id))
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{"1 users.u1.create u-admin u1", "2 buckets.b1.files.f1.create  f1", "3 databases.main.tables.posts.rows.r1.update u-editor r1"}, got)
	waitDrained(t, state, 10*time.Second)
	require.Equal(t, "hello", warehouseRows(t, state)["r1"].Title)

	code, out = runCLI("audit", "verify", "--config", path)
	require.Equal(t, exitOK, code, out)
	var head string
	require.NoError(t, conn.QueryRow(ctx, `SELECT head_hash FROM appwrite_sync.audit_delivery`).Scan(&head))
	require.Contains(t, out, "intact: 3 entries (seq 1 to 3), head hash "+head)

	var original string
	require.NoError(t, conn.QueryRow(ctx, `SELECT payload::text FROM wh.audit_log WHERE seq = 2`).Scan(&original))
	_, err = conn.Exec(ctx, `UPDATE wh.audit_log SET payload = '{"$id":"f1","bucketId":"b1","name":"other.png"}' WHERE seq = 2`)
	require.NoError(t, err)
	code, out = runCLI("audit", "verify", "--config", path)
	require.Equal(t, exitFailure, code, out)
	require.Contains(t, out, "NOT intact: entry seq 2: its content does not match its hash")

	_, err = conn.Exec(ctx, `UPDATE wh.audit_log SET payload = $1::jsonb WHERE seq = 2`, original)
	require.NoError(t, err)
	code, out = runCLI("audit", "verify", "--config", path)
	require.Equal(t, exitOK, code, out)

	_, err = conn.Exec(ctx, `DELETE FROM wh.audit_log WHERE seq = 2`)
	require.NoError(t, err)
	code, out = runCLI("audit", "verify", "--config", path)
	require.Equal(t, exitFailure, code, out)
	require.Contains(t, out, "entry seq 3: the entries after seq 1 and before seq 3 are missing")
	require.False(t, strings.Contains(out, "head hash"), out)
}

// After retention removed the oldest entries, verify passes from the first kept entry and
// says so.
func TestAuditVerifyAfterRetention(t *testing.T) {
	t.Parallel()
	state := pgtest.NewDatabase(t)
	path, cfg := auditConfig(t, state, `["users.*"]`)
	in := startInstance(t, cfg)
	for i := range 3 {
		status, _ := postEvents(t, in.base, fmt.Sprintf("users.u%d.create,users.*", i), "", []byte(fmt.Sprintf(`{"$id":"u%d"}`, i)))
		require.Equal(t, http.StatusOK, status)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, state)
	require.NoError(t, err)
	defer conn.Close(ctx)
	require.Eventually(t, func() bool {
		var n int
		return conn.QueryRow(ctx, `SELECT count(*) FROM wh.audit_log`).Scan(&n) == nil && n == 3
	}, 10*time.Second, 20*time.Millisecond)
	_, err = conn.Exec(ctx, `DELETE FROM wh.audit_log WHERE seq = 1`) // what retention removes: a prefix
	require.NoError(t, err)
	code, out := runCLI("audit", "verify", "--config", path)
	require.Equal(t, exitOK, code, out)
	require.Contains(t, out, "entries before seq 2 are not in the table (audit.retention removed them)")
	require.Contains(t, out, "intact: 2 entries (seq 2 to 3)")
}

// /admin/status and /metrics show what the row history's and the audit log's deliveries have
// not written to the warehouse yet (both empty once delivered), and `status` prints it.
func TestStatusShowsHistoryAndAuditBacklogs(t *testing.T) {
	t.Parallel()
	state := pgtest.NewDatabase(t)
	_, cfg := auditConfigWith(t, state, `["users.*", "databases.*.tables.*.rows.*"]`, true, "history: true")
	in := startInstance(t, cfg)
	for i := range 5 {
		row := rowBody(fmt.Sprintf("r%d", i), time.Date(2026, 3, 26, 10, 0, i, 0, time.UTC), "hello", 1, "a")
		status, body := postEvents(t, in.base, fmt.Sprintf("databases.main.tables.posts.rows.r%d.create,databases.*.tables.*.rows.*", i), "u1", row)
		require.Equal(t, http.StatusOK, status, body)
	}
	status, body := postEvents(t, in.base, auditUser, "u-admin", []byte(`{"$id":"u1"}`))
	require.Equal(t, http.StatusOK, status, body)

	type backlogs struct {
		History *backlogView `json:"history"`
		Audit   *backlogView `json:"audit"`
	}
	var got backlogs
	require.Eventually(t, func() bool {
		code, body := adminCall(t, in.admin, http.MethodGet, "/admin/status", "")
		got = backlogs{}
		return code == http.StatusOK && json.Unmarshal([]byte(body), &got) == nil &&
			got.History != nil && got.Audit != nil && got.History.Pending == 0 && got.Audit.Pending == 0
	}, 10*time.Second, 50*time.Millisecond)
	require.Zero(t, got.History.LagSeconds)
	require.Zero(t, got.Audit.LagSeconds)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, state)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var versions, entries int
	require.NoError(t, conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM wh.posts_history), (SELECT count(*) FROM wh.audit_log)`).Scan(&versions, &entries))
	require.Equal(t, []int{5, 6}, []int{versions, entries}, "pending 0 means delivered")

	code, metricsText := adminCall(t, in.admin, http.MethodGet, "/metrics", "")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, metricsText, `appwrite_sync_log_pending_entries{log="audit"} 0`)
	require.Contains(t, metricsText, `appwrite_sync_log_pending_entries{log="history"} 0`)

	var out bytes.Buffer
	writeStatus(&out, statusView{Sinks: map[string]sinkView{}, History: &backlogView{Pending: 12, LagSeconds: 1.5}, Audit: &backlogView{}})
	require.Contains(t, out.String(), "row history versions not yet in the warehouse: 12 (oldest 1.5s)")
	require.Contains(t, out.String(), "audit log entries not yet in the warehouse: 0 (oldest 0s)")
}
