package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector/config"
	"github.com/appwrite-sync/appwrite-sync/internal/pgtest"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// No secret (signing key, admin token, basic-auth password, API keys, DSN passwords) ever
// appears in a log line (debug level included) or in an HTTP answer, whatever the request.
func TestNoSecretInLogsOrAnswers(t *testing.T) {
	const (
		dsnPass   = "Dsn-Pa55-word-1f2e3d"
		basicPass = "basic-pass-9a8b7c"
		meiliKey  = "meili-key-5d4c3b2a"
		awKey     = "appwrite-key-0e1f2a3b"
	)
	state := pgtest.NewDatabase(t)
	withPass := strings.Replace(state, "postgres@", "postgres:"+dsnPass+"@", 1) // trust auth ignores it
	ports, err := pgtest.FreePorts(2)
	require.NoError(t, err)
	port, aport := ports[0], ports[1]
	text := fmt.Sprintf(`
listen: "127.0.0.1:%d"
admin: {listen: "127.0.0.1:%d", token: %q}
webhooks:
  - url: %q
    signing_keys: [%q, "old-rotated-key-77"]
    basic_auth: {username: appwrite, password: %q}
state: {database_url: %q}
warehouse: {schema: wh}
meilisearch: {api_key: %q}
appwrite: {project: p, api_key: %q}
tables:
  - database: main
    table: posts
    postgres: {table: posts, columns: {title: text, views: bigint}}
`, port, aport, testToken, webhookURL, testSecret, basicPass, withPass, meiliKey, awKey)
	cfg, err := config.Parse("secrets.yaml", []byte(text), func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	logs := &syncBuf{}
	in := startInstanceLog(t, cfg, logs)

	var answers strings.Builder
	do := func(method, url string, body []byte, hdr map[string]string) {
		req, _ := http.NewRequest(method, url, bytes.NewReader(body))
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Fprintf(&answers, "%d %v %s\n", resp.StatusCode, resp.Header, b)
	}
	body := rowBody("s1", time.Date(2026, 3, 26, 10, 0, 0, 0, time.UTC), "x", 1, "a")
	events := "databases.main.tables.posts.rows.s1.create"
	basic := "Basic " + b64("appwrite:"+basicPass)
	hook := in.base + "/webhooks/appwrite"
	do("POST", hook, body, map[string]string{"X-Appwrite-Webhook-Events": events, "X-Appwrite-Webhook-Signature": "bm9wZQ==", "Authorization": basic})
	do("POST", hook, body, map[string]string{"X-Appwrite-Webhook-Events": events, "X-Appwrite-Webhook-Signature": sign(webhookURL, body)})
	do("POST", hook, body, map[string]string{"X-Appwrite-Webhook-Events": events, "X-Appwrite-Webhook-Signature": sign(webhookURL, body), "Authorization": "Basic " + b64("appwrite:wrong")})
	do("POST", hook, body, map[string]string{"X-Appwrite-Webhook-Events": events, "X-Appwrite-Webhook-Signature": sign(webhookURL, body), "Authorization": basic})
	bad := []byte(`{"$id":"s2","$updatedAt":"nope"}`)
	do("POST", hook, bad, map[string]string{"X-Appwrite-Webhook-Events": "databases.main.tables.posts.rows.s2.create", "X-Appwrite-Webhook-Signature": sign(webhookURL, bad), "Authorization": basic})
	do("POST", hook+"/", body, map[string]string{"X-Appwrite-Webhook-Signature": sign(webhookURL, body), "Authorization": basic})
	do("GET", in.admin+"/admin/status", nil, map[string]string{"Authorization": "Bearer wrong-token"})
	do("GET", in.admin+"/admin/status", nil, map[string]string{"Authorization": "Bearer " + testToken})
	do("GET", in.admin+"/admin/quarantine?body=true", nil, map[string]string{"Authorization": "Bearer " + testToken})
	do("GET", in.admin+"/metrics", nil, nil)
	do("GET", in.base+"/readyz", nil, nil)
	waitDrained(t, state, 20*time.Second)
	in.stop()

	require.Contains(t, answers.String(), "200 ", "the signed request must have been recorded")
	require.NotEmpty(t, logs.String())
	for _, secret := range append(cfg.Secrets(), dsnPass, basicPass, meiliKey, awKey, testSecret, testToken, "old-rotated-key-77", b64("appwrite:"+basicPass)) {
		require.False(t, strings.Contains(logs.String(), secret), "a secret (%.4s…) leaked into the log", secret)
		require.False(t, strings.Contains(answers.String(), secret), "a secret (%.4s…) leaked into an HTTP answer", secret)
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
