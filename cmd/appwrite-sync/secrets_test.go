package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector/config"
	"github.com/appwrite-sync/appwrite-sync/internal/pgtest"
	"github.com/appwrite-sync/appwrite-sync/migrations"
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
	t.Parallel()
	const (
		dsnPass   = "Dsn-Pa55-word-1f2e3d"
		basicPass = "basic-pass-9a8b7c"
		meiliKey  = "meili-key-5d4c3b2a"
		awKey     = "appwrite-key-0e1f2a3b"
	)
	state := pgtest.NewMigratedDatabase(t, migrations.Up)
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

// kvDSN rewrites a postgres:// test URL as keyword=value settings with a password that needs
// quoting and escaping (trust auth ignores it).
func kvDSN(t *testing.T, u, password string) string {
	t.Helper()
	p, err := url.Parse(u)
	require.NoError(t, err)
	quoted := "'" + strings.ReplaceAll(password, "'", `\'`) + "'"
	return fmt.Sprintf("host=%s port=%s user=%s password=%s dbname=%s sslmode=disable",
		p.Hostname(), p.Port(), p.User.Username(), quoted, strings.TrimPrefix(p.Path, "/"))
}

// A key=value state store DSN with a password: neither serve (its start log, /readyz, the
// admin API, /metrics) nor validate nor a failing migrate shows any part of the password.
func TestKeyValueDSNPasswordIsNeverShown(t *testing.T) {
	t.Parallel()
	const pass = "kv-Pa55 w0rd's-7c1d"
	parts := []string{"kv-Pa55", "w0rd", "s-7c1d"}
	state := pgtest.NewMigratedDatabase(t, migrations.Up)
	cfg := testConfig(t, kvDSN(t, state, pass), kvDSN(t, state, pass), "")
	text := fmt.Sprintf(`
listen: %q
admin: {listen: %q, token: %q}
webhooks: [{url: %q, signing_keys: [%q]}]
state: {database_url: %q}
warehouse: {schema: wh}
tables:
  - database: main
    table: posts
    postgres: {table: posts, columns: {title: text}}
`, cfg.Listen, cfg.Admin.Listen, testToken, webhookURL, testSecret, cfg.State.DatabaseURL)
	dir := t.TempDir()
	file := filepath.Join(dir, "config.yaml")
	require.NoError(t, os.WriteFile(file, []byte(text), 0o600))
	var shown strings.Builder

	// serve: the start log, then /readyz once it is up.
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncBuf
	done := make(chan int)
	go func() { done <- Run(ctx, []string{"serve", "--config", file}, &out, &errb) }()
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + cfg.Listen + "/readyz")
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		shown.Write(b)
		return resp.StatusCode == http.StatusOK
	}, 20*time.Second, 20*time.Millisecond)
	for _, path := range []string{"/admin/status", "/admin/dead-letter", "/metrics"} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+cfg.Admin.Listen+path, nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, path)
		shown.Write(b)
	}
	cancel()
	require.Equal(t, 0, <-done, errb.String())
	require.Contains(t, errb.String(), "starting appwrite-sync")
	shown.WriteString(out.String() + errb.String())

	// validate, and validate of a file whose warehouse DSN (written in it) is broken.
	var vout, verr bytes.Buffer
	require.Equal(t, 0, Run(context.Background(), []string{"validate", "--config", file}, &vout, &verr), verr.String())
	shown.WriteString(vout.String() + verr.String())
	broken := filepath.Join(dir, "broken.yaml")
	require.NoError(t, os.WriteFile(broken, []byte(strings.Replace(text, "warehouse: {schema: wh}",
		fmt.Sprintf("warehouse: {schema: wh, database_url: %q}", "postgress://u:"+pass+"@h/db"), 1)), 0o600))
	vout.Reset()
	verr.Reset()
	require.Equal(t, 2, Run(context.Background(), []string{"validate", "--config", broken}, &vout, &verr))
	require.Contains(t, verr.String(), "warehouse.database_url")
	shown.WriteString(vout.String() + verr.String())

	// migrate with a connection string pgx cannot parse (the closing quote is missing).
	unparsable := filepath.Join(dir, "unparsable.yaml")
	open := strings.Replace(cfg.State.DatabaseURL, "s-7c1d'", "s-7c1d", 1)
	require.NotEqual(t, cfg.State.DatabaseURL, open)
	require.NoError(t, os.WriteFile(unparsable, []byte(strings.Replace(text, fmt.Sprintf("%q", cfg.State.DatabaseURL), fmt.Sprintf("%q", open), 1)), 0o600))
	vout.Reset()
	verr.Reset()
	require.NotEqual(t, 0, Run(context.Background(), []string{"migrate", "--config", unparsable}, &vout, &verr))
	shown.WriteString(vout.String() + verr.String())

	for _, p := range parts {
		require.NotContains(t, shown.String(), p, "a part of the DSN password was shown")
	}
}

// /readyz, which anyone can reach, says only what is wrong: never the state store's address,
// port, user, database or the driver's text. The details go to the log, once per change.
func TestReadyzSaysOnlyWhatIsWrong(t *testing.T) {
	t.Parallel()
	real, err := url.Parse(pgtest.NewDatabase(t))
	require.NoError(t, err)
	for name, dsn := range map[string]string{
		"unreachable":           "postgres://secretuser:pw-Ready1@127.0.0.1:1/secretdb?sslmode=disable",
		"refused by the server": fmt.Sprintf("postgres://secretuser:pw-Ready2@%s/secretdb?sslmode=disable", real.Host),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(t, dsn, dsn, "")
			logs := &syncBuf{}
			l := logrus.New()
			l.SetOutput(logs)
			l.SetFormatter(&logrus.JSONFormatter{})
			a, err := build(context.Background(), cfg, logrus.NewEntry(l))
			require.NoError(t, err)
			defer a.close()
			pub, err := a.publicRouter()
			require.NoError(t, err)
			for range 3 {
				w := httptest.NewRecorder()
				pub.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/readyz", nil))
				require.Equal(t, http.StatusServiceUnavailable, w.Code)
				require.JSONEq(t, `{"ready":false,"reason":"state store unreachable"}`, w.Body.String())
			}
			require.Equal(t, 1, strings.Count(logs.String(), `"msg":"not ready"`), "logged once, not per probe: %s", logs.String())
			require.Contains(t, logs.String(), "secretuser", "the details are in the log")
			require.NotContains(t, logs.String(), "pw-Ready")
		})
	}
}
