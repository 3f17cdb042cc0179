package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector/config"
	"github.com/appwrite-sync/appwrite-sync/internal/pgtest"
	"github.com/appwrite-sync/appwrite-sync/internal/testcert"
	"github.com/appwrite-sync/appwrite-sync/migrations"
)

func quietLog() *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return logrus.NewEntry(l)
}

func tlsClient(p testcert.Pair) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: p.Pool(), MinVersion: tls.VersionTLS12}}}
}

// startServe builds and runs the service from cfg (the real build + run wiring) and waits
// until /healthz answers through client at base.
func startServe(t *testing.T, cfg *config.Config, client *http.Client, base string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	_, err := migrations.Up(ctx, cfg.State.DatabaseURL)
	require.NoError(t, err)
	a, err := build(ctx, cfg, quietLog())
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- a.run(ctx); a.close() }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
	require.Eventually(t, func() bool {
		resp, err := client.Get(base + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 10*time.Second, 20*time.Millisecond)
}

// signedPost sends a signed row event through client; xff, if set, is sent as X-Forwarded-For.
func signedPost(t *testing.T, client *http.Client, base, id, xff string) *http.Response {
	t.Helper()
	e := event{"create", rowBody(id, time.Date(2026, 3, 26, 10, 0, 0, 0, time.UTC), "t", 1, "a")}
	req, err := http.NewRequest(http.MethodPost, base+"/webhooks/appwrite", bytes.NewReader(e.body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Appwrite-Webhook-Events", e.eventName(id))
	req.Header.Set("X-Appwrite-Webhook-Signature", sign(webhookURL, e.body))
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	resp, err := client.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	resp.Body.Close()
	return string(b)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	p, err := pgtest.FreePort()
	require.NoError(t, err)
	return fmt.Sprintf("127.0.0.1:%d", p)
}

// Both listeners serve HTTPS (TLS 1.2+) with the configured certificates through the real
// serve wiring; webhooks, the admin API, the healthcheck and the backfill command work over it.
func TestTLSServeEndToEnd(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pub := testcert.Write(t, dir, "pub-")
	adm := testcert.Write(t, dir, "admin-")
	listen, adminListen := freeAddr(t), freeAddr(t)
	text := fmt.Sprintf(`
listen: %q
tls: {cert_file: pub-cert.pem, key_file: pub-key.pem}
admin:
  listen: %q
  token: %q
  tls:
    cert_file: admin-cert.pem
    key_file: admin-key.pem
webhooks:
  - url: %q
    signing_keys: [%q]
state: {database_url: %q, group_commit_wait: 1ms}
warehouse: {schema: wh}
server: {shutdown_timeout: 5s, drain_delay: 0s}
log: {level: warn, format: text}
tables:
  - database: main
    table: posts
    postgres: {table: posts, columns: {title: text, views: bigint}}
`, listen, adminListen, testToken, webhookURL, testSecret, pgtest.NewDatabase(t))
	path := filepath.Join(dir, "config.yaml")
	require.NoError(t, os.WriteFile(path, []byte(text), 0o600))
	cfg, err := config.Load(path)
	require.NoError(t, err)
	require.Equal(t, pub.CertFile, cfg.TLS.CertFile)

	client := tlsClient(pub)
	base := "https://" + listen
	startServe(t, cfg, client, base)

	resp, err := client.Get(base + "/readyz")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, readAll(t, resp))
	require.GreaterOrEqual(t, resp.TLS.Version, uint16(tls.VersionTLS12))
	require.Equal(t, pub.Cert.Raw, resp.TLS.PeerCertificates[0].Raw, "the public listener serves tls.cert_file")

	resp = signedPost(t, client, base, "tls1", "")
	require.Equal(t, http.StatusOK, resp.StatusCode, readAll(t, resp))

	// TLS 1.1 and older are refused.
	old := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: pub.Pool(), MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}}}
	_, err = old.Get(base + "/healthz")
	require.Error(t, err, "TLS 1.1 must be refused")

	// Plain HTTP on the TLS port gets no service.
	resp, err = http.Get("http://" + listen + "/healthz")
	require.NoError(t, err)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Contains(t, readAll(t, resp), plainToTLS)

	// The admin listener serves its own certificate.
	aclient := tlsClient(adm)
	req, _ := http.NewRequest(http.MethodGet, "https://"+adminListen+"/admin/status", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err = aclient.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, readAll(t, resp))
	require.Equal(t, adm.Cert.Raw, resp.TLS.PeerCertificates[0].Raw)
	_, err = client.Get("https://" + adminListen + "/metrics")
	require.Error(t, err, "the admin certificate is not the public one")

	// healthcheck: https on loopback, and the default-style http URL upgraded to https.
	for _, u := range []string{base + "/readyz", "https://localhost:" + portOf(listen) + "/readyz", "http://" + listen + "/readyz"} {
		var out, errb bytes.Buffer
		require.Equal(t, 0, Run(context.Background(), []string{"healthcheck", "--url", u}, &out, &errb), "%s: %s", u, errb.String())
		require.Contains(t, out.String(), `"ready":true`)
	}

	// The backfill command reaches the HTTPS admin API (pinned to admin.tls.cert_file); the
	// Appwrite API is not configured here, so the admin API itself answers 501.
	var out, errb bytes.Buffer
	code := Run(context.Background(), []string{"backfill", "--config", path, "--table", "main/posts"}, &out, &errb)
	require.Equal(t, 1, code)
	require.Contains(t, errb.String(), "admin API answered 501", "reached the admin API over TLS")
}

func portOf(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

func TestTLSCertReload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first := testcert.Write(t, dir, "")
	r, err := newCertReloader(first.CertFile, first.KeyFile, time.Minute, quietLog())
	require.NoError(t, err)
	clock := time.Now()
	r.now = func() time.Time { return clock }
	served := func() []byte {
		c, err := r.GetCertificate(&tls.ClientHelloInfo{})
		require.NoError(t, err)
		return c.Certificate[0]
	}
	touch := func(d time.Duration) {
		for _, f := range []string{first.CertFile, first.KeyFile} {
			require.NoError(t, os.Chtimes(f, clock.Add(d), clock.Add(d)))
		}
	}
	require.Equal(t, first.Cert.Raw, served())

	second := testcert.Write(t, dir, "") // a renewal in place
	touch(time.Second)
	require.Equal(t, first.Cert.Raw, served(), "files are looked at once per interval")
	clock = clock.Add(time.Minute)
	require.Equal(t, second.Cert.Raw, served(), "renewed certificate served without a restart")

	// A half-written renewal keeps the previous pair.
	require.NoError(t, os.WriteFile(first.KeyFile, []byte("-----BEGIN PRIVATE KEY-----\nbroken\n"), 0o600))
	touch(2 * time.Second)
	clock = clock.Add(time.Minute)
	require.Equal(t, second.Cert.Raw, served())

	third := testcert.Write(t, dir, "")
	touch(3 * time.Second)
	clock = clock.Add(time.Minute)
	require.Equal(t, third.Cert.Raw, served(), "loads again once the files are fixed")

	_, err = newCertReloader(filepath.Join(dir, "nope.pem"), first.KeyFile, time.Minute, quietLog())
	require.Error(t, err)
}

func TestTLSPinnedAdminClient(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := testcert.Write(t, dir, "good-")
	other := testcert.Write(t, dir, "other-")
	scfg, err := serverTLS(config.TLS{CertFile: good.CertFile, KeyFile: good.KeyFile}, quietLog())
	require.NoError(t, err)
	require.Equal(t, uint16(tls.VersionTLS12), scfg.MinVersion)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", scfg)
	require.NoError(t, err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }), ErrorLog: log.New(io.Discard, "", 0)}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	get := func(certFile, host string) error {
		tc, err := pinnedTLS(certFile)
		require.NoError(t, err)
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
		resp, err := c.Get("https://" + net.JoinHostPort(host, portOf(ln.Addr().String())) + "/")
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	require.NoError(t, get(good.CertFile, "127.0.0.1"))
	require.NoError(t, get(good.CertFile, "localhost"))
	require.ErrorContains(t, get(other.CertFile, "127.0.0.1"), "not the one in admin.tls.cert_file")
	_, err = pinnedTLS(good.KeyFile)
	require.Error(t, err, "a key is not a certificate")
	require.Equal(t, "https://127.0.0.1:9090", adminBase("0.0.0.0:9090", true))
	require.Equal(t, "http://127.0.0.1:9090", adminBase(":9090", false))
}

func TestHealthcheckTLS(t *testing.T) {
	t.Parallel()
	status := http.StatusOK
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(status)
		io.WriteString(w, `{"ready":true}`)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the plain request's handshake error
	srv.StartTLS()                                   // a certificate no client trusts
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	run := func(url string) (int, string, string) {
		var out, errb bytes.Buffer
		code := Run(context.Background(), []string{"healthcheck", "--url", url, "--timeout", "2s"}, &out, &errb)
		return code, out.String(), errb.String()
	}
	code, out, errOut := run(srv.URL + "/readyz")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, `{"ready":true}`)
	code, _, errOut = run("http://" + u.Host + "/readyz")
	require.Equal(t, 0, code, "plain URL retried as https: %s", errOut)

	status = http.StatusServiceUnavailable
	code, _, errOut = run(srv.URL + "/readyz")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "answered 503")

	code, _, errOut = run("127.0.0.1:8080/readyz")
	require.Equal(t, 2, code, errOut)

	require.True(t, isLoopback(&url.URL{Host: "127.0.0.1:1"}))
	require.True(t, isLoopback(&url.URL{Host: "[::1]:1"}))
	require.True(t, isLoopback(&url.URL{Host: "localhost:1"}))
	require.False(t, isLoopback(&url.URL{Host: "sync.example.com:443"}), "other hosts are verified")
	require.False(t, isLoopback(&url.URL{Host: "10.0.0.1"}))
}

func TestValidateTLSErrorExits2WithLocation(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	testcert.Write(t, dir, "")
	path := filepath.Join(dir, "config.yaml")
	text := fmt.Sprintf(`listen: ":8080"
tls:
  cert_file: cert.pem
admin:
  listen: "127.0.0.1:9090"
  token: %q
  tls: {cert_file: cert.pem, key_file: missing-key.pem}
webhooks:
  - url: %q
    signing_keys: [k]
state: {database_url: "postgres://localhost/x"}
tables:
  - {database: main, table: posts, postgres: {columns: {title: text}}}
`, testToken, webhookURL)
	require.NoError(t, os.WriteFile(path, []byte(text), 0o600))
	var out, errb bytes.Buffer
	require.Equal(t, 2, Run(context.Background(), []string{"validate", "--config", path}, &out, &errb))
	require.Contains(t, errb.String(), path+":3: tls: key_file is missing: TLS needs both cert_file and key_file")
	require.Contains(t, errb.String(), path+`:7: admin.tls.key_file: cannot read key_file: no such file or directory (got "missing-key.pem")`)
}

// The rate limit through the real serve wiring: off by default, 429 with Retry-After after
// the burst, X-Forwarded-For ignored unless the peer is a trusted proxy, counted in /metrics.
func TestRateLimitServeEndToEnd(t *testing.T) {
	t.Parallel()
	state := pgtest.NewMigratedDatabase(t, migrations.Up)
	metricsOf := func(in *instance) string {
		resp, err := http.Get(in.admin + "/metrics")
		require.NoError(t, err)
		return readAll(t, resp)
	}

	t.Run("off by default", func(t *testing.T) {
		in := startInstance(t, testConfig(t, state, state, ""))
		for i := 0; i < 30; i++ {
			resp := signedPost(t, http.DefaultClient, in.base, fmt.Sprintf("d%d", i), "")
			require.Equal(t, http.StatusOK, resp.StatusCode)
		}
	})

	t.Run("direct clients", func(t *testing.T) {
		in := startInstance(t, testConfig(t, state, state, "limits: {rate_per_source: 0.01, burst: 3}\n"))
		for i := 0; i < 3; i++ {
			resp := signedPost(t, http.DefaultClient, in.base, fmt.Sprintf("r%d", i), "")
			require.Equal(t, http.StatusOK, resp.StatusCode, readAll(t, resp))
		}
		resp := signedPost(t, http.DefaultClient, in.base, "r3", "")
		require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
		require.Equal(t, "100", resp.Header.Get("Retry-After"), "one token at 0.01/s")
		require.Equal(t, "application/json; charset=utf-8", resp.Header.Get("Content-Type"))
		require.Contains(t, readAll(t, resp), `"error":"too many requests from 127.0.0.1`)
		resp = signedPost(t, http.DefaultClient, in.base, "r4", "198.51.100.7")
		require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "X-Forwarded-For from an untrusted peer is ignored")
		hr, err := http.Get(in.base + "/healthz")
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, hr.StatusCode, "health endpoints are not limited")
		hr.Body.Close()

		m := metricsOf(in)
		require.Contains(t, m, `appwrite_sync_webhook_rate_limited_total{webhook="webhooks[0]"} 2`)
		require.Contains(t, m, `appwrite_sync_webhook_requests_total{outcome="rate_limited",webhook="webhooks[0]"} 2`)
	})

	t.Run("behind a trusted proxy", func(t *testing.T) {
		in := startInstance(t, testConfig(t, state, state, "limits: {rate_per_source: 0.01, burst: 1, trusted_proxies: [127.0.0.1]}\n"))
		require.Equal(t, http.StatusOK, signedPost(t, http.DefaultClient, in.base, "p1", "198.51.100.1").StatusCode)
		require.Equal(t, http.StatusTooManyRequests, signedPost(t, http.DefaultClient, in.base, "p2", "198.51.100.1").StatusCode)
		require.Equal(t, http.StatusOK, signedPost(t, http.DefaultClient, in.base, "p3", "198.51.100.2").StatusCode,
			"another client behind the proxy has its own bucket")
	})
}
