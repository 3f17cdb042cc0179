package webhook_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/connector/config"
	"github.com/appwrite-sync/appwrite-sync/connector/webhook"
)

type memRecorder struct {
	mu      sync.Mutex
	changes []connector.Change
}

func (m *memRecorder) Record(_ context.Context, ch connector.Change) (webhook.Recorded, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.changes = append(m.changes, ch)
	return webhook.RecordedNew, nil
}

func (m *memRecorder) Quarantine(context.Context, webhook.Quarantined) error { return nil }

// configured parses a config with one webhook entry and builds the endpoint from it as serve
// does.
func configured(t *testing.T, entry string) webhook.Endpoint {
	t.Helper()
	text := "admin:\n  listen: \"\"\nwebhooks:\n  - " + entry + "\n    signing_keys: [\"k\"]\n" +
		"state:\n  database_url: \"postgres://localhost/x\"\n" +
		"tables:\n  - database: main\n    table: posts\n    postgres:\n      columns:\n        title: text\n"
	cfg, err := config.Parse("config.yaml", []byte(text), func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	w := cfg.Webhooks[0]
	v, err := webhook.NewVerifier(w.URL, w.SigningKeys)
	require.NoError(t, err)
	return webhook.Endpoint{Name: w.Name, URL: w.URL, Path: w.Path, Verifier: v}
}

// deliver POSTs a row event to target, signed over signedURL as Appwrite signs it; the request
// line carries target's path byte for byte, as Appwrite's HTTP client sends the URL as typed.
func deliver(t *testing.T, target, signedURL string) (int, string) {
	t.Helper()
	body := []byte(`{"$id":"r1","$databaseId":"main","$tableId":"posts","$updatedAt":"2026-03-26T10:00:00.000+00:00"}`)
	u, err := url.Parse(target)
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, target, bytes.NewReader(body))
	require.NoError(t, err)
	require.Equal(t, target[strings.Index(target[len("http://"):], "/")+len("http://"):], u.RequestURI(), "the path is sent as written")
	req.Header.Set(webhook.HeaderEvents, "databases.main.tables.posts.rows.r1.update")
	req.Header.Set(webhook.HeaderSignature, webhook.Sign(signedURL, "k", body))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// A webhook URL whose path holds %-escapes routes: from the config, through the router as the
// service builds it, over a real connection, to a verified and recorded change. The signature
// covers the URL as typed.
func TestEscapedURLPathsRoute(t *testing.T) {
	t.Parallel()
	gin.SetMode(gin.TestMode)
	for _, tc := range []struct{ name, entry, url, sent string }{
		{"space", `url: "https://x.example/hooks/app%20write"`, "https://x.example/hooks/app%20write", "/hooks/app%20write"},
		{"encoded slash", `url: "https://x.example/hooks/a%2Fb"`, "https://x.example/hooks/a%2Fb", "/hooks/a%2Fb"},
		{"lower-case hex", `url: "https://x.example/hooks/a%2fb"`, "https://x.example/hooks/a%2fb", "/hooks/a%2fb"},
		{"percent", `url: "https://x.example/hooks/100%25"`, "https://x.example/hooks/100%25", "/hooks/100%25"},
		{"utf-8", `url: "https://x.example/hooks/caf%C3%A9"`, "https://x.example/hooks/caf%C3%A9", "/hooks/caf%C3%A9"},
		{"encoded colon", `url: "https://x.example/hooks/v1%3Awrite"`, "https://x.example/hooks/v1%3Awrite", "/hooks/v1%3Awrite"},
		{"colon", `url: "https://x.example/hooks/v1:write"`, "https://x.example/hooks/v1:write", "/hooks/v1:write"},
		{"encoded tilde", `url: "https://x.example/hooks/%7Eme"`, "https://x.example/hooks/%7Eme", "/hooks/%7Eme"},
		{"explicit path", "url: \"https://proxy.example/public/app%20write\"\n    path: \"/hooks/app%20write\"", "https://proxy.example/public/app%20write", "/hooks/app%20write"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ep := configured(t, tc.entry)
			rec := &memRecorder{}
			log := logrus.New()
			log.SetOutput(io.Discard)
			h, err := webhook.NewHandler(webhook.Options{Endpoints: []webhook.Endpoint{ep}, Recorder: rec, Log: logrus.NewEntry(log)})
			require.NoError(t, err)
			engine := gin.New() // as cmd/appwrite-sync's publicRouter
			engine.RedirectTrailingSlash = false
			engine.RedirectFixedPath = false
			h.Routes(engine)
			srv := httptest.NewServer(engine)
			t.Cleanup(srv.Close)

			status, body := deliver(t, srv.URL+tc.sent, tc.url)
			require.Equal(t, http.StatusOK, status, body)
			require.Contains(t, body, `"recorded":true`)
			rec.mu.Lock()
			require.Len(t, rec.changes, 1)
			rec.mu.Unlock()

			status, body = deliver(t, srv.URL+tc.sent, tc.url+"x")
			require.Equal(t, http.StatusUnauthorized, status, "signed over another URL: %s", body)
			status, _ = deliver(t, srv.URL+"/hooks/other", tc.url)
			require.Equal(t, http.StatusNotFound, status)
		})
	}
}

// Paths the router cannot hold as plain routes are refused when the config is read, with the
// fix, instead of starting a service whose webhook answers 404 (or panics the router).
func TestUnroutablePathsAreConfigErrors(t *testing.T) {
	t.Parallel()
	for name, p := range map[string]string{
		"wildcard":         "/hooks/a%2Ab",
		"backslash":        "/hooks/a%5Cb",
		"dot segments":     "/hooks/%2E%2E/x",
		"double slash":     "//hooks",
		"malformed escape": "/hooks/100%",
	} {
		_, err := webhook.RoutePath(p)
		require.Error(t, err, name)
		text := fmt.Sprintf("webhooks:\n  - url: \"https://x.example/ok\"\n    path: %q\n    signing_keys: [\"k\"]\nstate:\n  database_url: \"postgres://localhost/x\"\n", p)
		_, err = config.Parse("config.yaml", []byte(text), func(string) (string, bool) { return "", false })
		require.ErrorContains(t, err, "webhooks[0].path", name)
	}
	// Two spellings of one route are one path.
	text := "webhooks:\n  - url: \"https://x.example/a%20b\"\n    signing_keys: [\"k\"]\n  - url: \"https://y.example/a b\"\n    signing_keys: [\"k\"]\nstate:\n  database_url: \"postgres://localhost/x\"\n"
	_, err := config.Parse("config.yaml", []byte(text), func(string) (string, bool) { return "", false })
	require.ErrorContains(t, err, "already used by webhooks[0]")
}
