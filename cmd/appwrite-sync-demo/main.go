// Command appwrite-sync-demo runs a self-contained demo on one machine, without Docker: a
// throwaway PostgreSQL from the machine's binaries, an in-process STAND-IN for Meilisearch
// (the repository's HTTP double, not a real search engine), an in-process stand-in for the
// Appwrite REST API, and the real appwrite-sync binary. It sends a handful of correctly signed
// row webhooks, prints what landed in each sink, then runs a small backfill with the live
// progress bar. `make demo` builds the binary and runs this.
package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/internal/appwritetest"
	"github.com/appwrite-sync/appwrite-sync/internal/meilitest"
	"github.com/appwrite-sync/appwrite-sync/internal/pgtest"
)

const (
	secret     = "demo-webhook-secret"
	adminToken = "demo-admin-token-0123456789"
	hookURL    = "https://sync.example.com/webhooks/appwrite"
	masterKey  = "demo-master-key-0123456789"
)

func main() {
	bin := flag.String("bin", "bin/appwrite-sync", "appwrite-sync binary (make build)")
	rows := flag.Int("backfill-rows", 5000, "rows in the stand-in Appwrite table to backfill")
	flag.Parse()
	if err := run(*bin, *rows); err != nil {
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		os.Exit(1)
	}
}

func step(format string, a ...any) { fmt.Printf("\n==> "+format+"\n", a...) }

func run(bin string, backfillRows int) error {
	step("starting a throwaway PostgreSQL from the machine's binaries")
	pg, err := pgtest.StartCluster()
	if err != nil {
		return err
	}
	defer pg.Stop()
	fmt.Println("    ", pg.URL)

	step("starting the Meilisearch STAND-IN (in-repo HTTP double; not a real Meilisearch)")
	meili := meilitest.New(meilitest.Options{MasterKey: masterKey})
	defer meili.Close()
	fmt.Println("    ", meili.URL)

	step("starting the Appwrite REST API stand-in with %d rows in main/posts", backfillRows)
	aw := appwritetest.New(appwritetest.Options{})
	defer aw.Close()
	key := connector.TableKey{Database: "main", Table: "posts"}
	aw.Seed(key, backfillRows, 512)
	fmt.Println("    ", aw.URL)

	ports, err := pgtest.FreePorts(2)
	if err != nil {
		return err
	}
	port, aport := ports[0], ports[1]
	dir, err := os.MkdirTemp("", "appwrite-sync-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg := fmt.Sprintf(`listen: "127.0.0.1:%d"
admin: {listen: "127.0.0.1:%d", token: %q}
webhooks: [{url: %q, signing_keys: [%q]}]
state: {database_url: %q}
meilisearch: {url: %q, api_key: %q}
warehouse: {schema: appwrite}
appwrite: {endpoint: %q, project: %q, api_key: %q}
log: {level: warn, format: text}
server: {drain_delay: 0s}
tables:
  - database: main
    table: posts
    meilisearch:
      index: posts
      fields: [title, views]
      searchable: [title]
      sortable: [views]
    postgres:
      table: posts
      columns: {title: text, views: bigint}
`, port, aport, adminToken, hookURL, secret, pg.URL, meili.URL, masterKey, aw.URL, appwritetest.ProjectDefault, appwritetest.APIKeyDefault)
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return err
	}

	step("starting appwrite-sync (%s)", bin)
	srv := exec.Command(bin, "serve", "--config", cfgPath)
	srv.Stdout, srv.Stderr = os.Stdout, os.Stderr
	if err := srv.Start(); err != nil {
		return fmt.Errorf("starting %s (run `make build` first): %w", bin, err)
	}
	defer func() { _ = srv.Process.Signal(syscall.SIGTERM); _ = srv.Wait() }()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	if err := waitReady(base + "/readyz"); err != nil {
		return err
	}

	step("sending signed row webhooks (out of order, with a duplicate and a delete)")
	t0 := time.Now().UTC().Truncate(time.Millisecond)
	sends := []struct {
		action, id, title string
		views             int
		at                time.Duration
	}{
		{"create", "welcome", "Welcome to appwrite-sync", 1, 0},
		{"create", "release.notes", "Release notes (an id with a dot)", 10, 0},
		{"update", "welcome", "Welcome, edited", 2, time.Second},
		{"create", "draft", "A draft", 0, 0},
		{"delete", "draft", "A draft", 0, 0},
		{"update", "welcome", "Welcome (stale, sent late)", 1, 500 * time.Millisecond},
		{"update", "welcome", "Welcome, edited", 2, time.Second},
	}
	for _, s := range sends {
		body := fmt.Sprintf(`{"$id":%q,"$sequence":"1","$databaseId":"main","$tableId":"posts","$createdAt":%q,"$updatedAt":%q,"$permissions":["read(\"any\")"],"title":%q,"views":%d}`,
			s.id, t0.Format("2006-01-02T15:04:05.000+00:00"), t0.Add(s.at).Format("2006-01-02T15:04:05.000+00:00"), s.title, s.views)
		code, answer := post(base+"/webhooks/appwrite", "databases.main.tables.posts.rows."+s.id+"."+s.action, []byte(body))
		fmt.Printf("    %-6s %-14s → %d %s\n", s.action, s.id, code, strings.TrimSpace(answer))
	}
	time.Sleep(1500 * time.Millisecond)

	step("what landed in the warehouse (PostgreSQL appwrite.posts)")
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pg.URL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	rs, err := conn.Query(ctx, `SELECT id, title, views, updated_at FROM appwrite.posts ORDER BY id`)
	if err != nil {
		return err
	}
	for rs.Next() {
		var id, title string
		var views int64
		var at time.Time
		_ = rs.Scan(&id, &title, &views, &at)
		fmt.Printf("    %-14s %-28q views=%d updated_at=%s\n", id, title, views, at.UTC().Format(time.RFC3339Nano))
	}
	rs.Close()

	step("what landed in the index (Meilisearch STAND-IN, index \"posts\")")
	for id, doc := range meili.Documents("posts") {
		b, _ := json.Marshal(doc)
		fmt.Printf("    %-14s %s\n", id, b)
	}

	step("backfilling main/posts from the Appwrite stand-in (live progress)")
	bf := exec.Command(bin, "backfill", "--config", cfgPath, "--table", "main/posts", "--mode", "full", "--follow")
	bf.Stdout, bf.Stderr = os.Stdout, os.Stderr
	if err := bf.Run(); err != nil {
		return fmt.Errorf("backfill: %w", err)
	}
	var n int
	_ = conn.QueryRow(ctx, `SELECT count(*) FROM appwrite.posts`).Scan(&n)
	fmt.Printf("    warehouse rows now: %d; index documents now: %d\n", n, meili.DocumentCount("posts"))
	step("done: everything above ran on this machine; stopping")
	return nil
}

func waitReady(url string) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("appwrite-sync did not become ready at %s", url)
}

func post(url, event string, body []byte) (int, string) {
	m := hmac.New(sha1.New, []byte(secret))
	m.Write([]byte(hookURL))
	m.Write(body)
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Appwrite-Webhook-Events", event)
	req.Header.Set("X-Appwrite-Webhook-Signature", base64.StdEncoding.EncodeToString(m.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
