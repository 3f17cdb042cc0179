// Command appwrite-sync-demo runs a self-contained demo on one machine, without Docker: a
// throwaway PostgreSQL from the machine's binaries, an in-process STAND-IN for Meilisearch
// (the repository's HTTP double, not a real search engine), an in-process stand-in for the
// Appwrite REST API, and the real appwrite-sync binary. It sends a handful of correctly signed
// row webhooks, prints what landed in each sink, then runs a small backfill with the live
// progress bar. `make demo` builds the binary and runs this.
package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/connector/webhook"
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
	if err := run(os.Stdout, *bin, *rows); err != nil {
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		os.Exit(1)
	}
}

func run(out io.Writer, bin string, backfillRows int) error {
	step := func(format string, a ...any) { fmt.Fprintf(out, "\n==> "+format+"\n", a...) }
	step("starting a throwaway PostgreSQL from the machine's binaries")
	pg, err := pgtest.StartCluster()
	if err != nil {
		return err
	}
	defer pg.Stop()
	fmt.Fprintln(out, "    ", pg.URL)

	step("starting the Meilisearch STAND-IN (in-repo HTTP double; not a real Meilisearch)")
	meili := meilitest.New(meilitest.Options{MasterKey: masterKey})
	defer meili.Close()
	fmt.Fprintln(out, "    ", meili.URL)

	step("starting the Appwrite REST API stand-in with %d rows in main/posts", backfillRows)
	aw := appwritetest.New(appwritetest.Options{})
	defer aw.Close()
	key := connector.TableKey{Database: "main", Table: "posts"}
	aw.Seed(key, backfillRows, 512)
	fmt.Fprintln(out, "    ", aw.URL)

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

	step("sending signed row webhooks (out of order, with a duplicate, a stale update and a delete)")
	t0 := time.Now().UTC().Truncate(time.Millisecond)
	sends := []send{
		{"create", "welcome", "Welcome to appwrite-sync", 1, 0},
		{"create", "release.notes", "Release notes (an id with a dot)", 10, 0},
		{"update", "welcome", "Welcome, edited", 2, time.Second},
		{"create", "draft", "A draft", 0, 0},
		{"delete", "draft", "A draft", 0, 0},
		{"update", "welcome", "Welcome (stale, sent late)", 1, 500 * time.Millisecond},
		{"update", "welcome", "Welcome, edited", 2, time.Second},
	}
	// Appwrite sends a webhook after changing the row, with the row as its API then returns
	// it. The stand-in goes through the same history in $updatedAt order and each webhook
	// carries its rendering of that version: the stand-in ends holding the newest version of
	// each row, so the backfill below finds them current and changes none of them.
	history := slices.Clone(sends)
	slices.SortStableFunc(history, func(a, b send) int {
		if c := cmp.Compare(a.at, b.at); c != 0 {
			return c
		}
		return cmp.Compare(btoi(a.action == "delete"), btoi(b.action == "delete"))
	})
	bodies, last := map[send][]byte{}, map[string][]byte{}
	for _, s := range history {
		if _, done := bodies[s]; done {
			continue
		}
		if s.action == "delete" { // the delete payload is the row as it was
			bodies[s] = last[s.id]
			aw.Delete(key, s.id)
			continue
		}
		b := aw.Put(key, map[string]any{"$id": s.id, "$createdAt": t0, "$updatedAt": t0.Add(s.at),
			"$permissions": []string{`read("any")`}, "title": s.title, "views": s.views})
		bodies[s], last[s.id] = b, b
	}
	fmt.Fprintf(out, "    %-6s %-14s %-14s %-36s → %s\n", "event", "$id", "$updatedAt", "title", "answer (result)")
	for _, s := range sends {
		code, answer := post(base+"/webhooks/appwrite", "databases.main.tables.posts.rows."+s.id+"."+s.action, bodies[s])
		var a struct{ Result string }
		_ = json.Unmarshal([]byte(answer), &a)
		fmt.Fprintf(out, "    %-6s %-14s %-14s %-36q → %d %s\n", s.action, s.id, t0.Add(s.at).Format("15:04:05.000"), s.title, code, a.Result)
	}
	fmt.Fprintln(out, "    new: the newest version of its row so far, sent to the sinks; stale: an older version than")
	fmt.Fprintln(out, "    one already recorded (ignored); duplicate: the same version again (ignored)")
	if err := waitApplied(fmt.Sprintf("http://127.0.0.1:%d", aport)); err != nil {
		return err
	}

	step("the final rows, and why")
	for _, id := range []string{"welcome", "release.notes", "draft"} {
		w := winner(sends, id)
		if w.action == "delete" {
			fmt.Fprintf(out, "    %-14s deleted: the delete at %s is its newest event; a tombstone stops late updates from resurrecting it\n",
				id, t0.Add(w.at).Format("15:04:05.000"))
			continue
		}
		fmt.Fprintf(out, "    %-14s %q: the version with the greatest $updatedAt (%s), whatever the order of arrival\n",
			id, w.title, t0.Add(w.at).Format("15:04:05.000"))
	}

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
		fmt.Fprintf(out, "    %-14s %-28q views=%d updated_at=%s\n", id, title, views, at.UTC().Format(time.RFC3339Nano))
	}
	rs.Close()

	step("what landed in the index (Meilisearch STAND-IN, index \"posts\")")
	for id, doc := range meili.Documents("posts") {
		b, _ := json.Marshal(doc)
		fmt.Fprintf(out, "    %-14s %s\n", id, b)
	}

	step("backfilling main/posts from the Appwrite stand-in (live progress): %d seeded rows are new; the webhooks' rows are already current", backfillRows)
	bf := exec.Command(bin, "backfill", "--config", cfgPath, "--table", "main/posts", "--mode", "full", "--follow")
	bf.Stdout, bf.Stderr = out, out
	if err := bf.Run(); err != nil {
		return fmt.Errorf("backfill: %w", err)
	}
	var n int
	_ = conn.QueryRow(ctx, `SELECT count(*) FROM appwrite.posts`).Scan(&n)
	fmt.Fprintf(out, "    warehouse rows now: %d; index documents now: %d\n", n, meili.DocumentCount("posts"))
	step("done: everything above ran on this machine; stopping")
	return nil
}

// send is one webhook the demo sends.
type send struct {
	action, id, title string
	views             int
	at                time.Duration // $updatedAt after the demo's start
}

// winner is the event that decides row id's final state: the greatest $updatedAt, a delete
// winning a tie (the ledger's version order).
func winner(sends []send, id string) send {
	var w send
	found := false
	for _, s := range sends {
		if s.id != id {
			continue
		}
		if !found || s.at > w.at || (s.at == w.at && s.action == "delete") {
			w, found = s, true
		}
	}
	return w
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// waitApplied waits until the admin API reports no sink with pending rows.
func waitApplied(adminBase string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequest(http.MethodGet, adminBase+"/admin/status", nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			var st struct {
				Sinks map[string]struct{ Pending int64 }
			}
			err := json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
			pending := int64(0)
			for _, s := range st.Sinks {
				pending += s.Pending
			}
			if err == nil && len(st.Sinks) > 0 && pending == 0 {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("the sinks did not apply the webhooks within 30s")
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
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(webhook.HeaderEvents, event)
	req.Header.Set(webhook.HeaderSignature, webhook.Sign(hookURL, secret, body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
