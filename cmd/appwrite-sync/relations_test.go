package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/connector/config"
	"github.com/appwrite-sync/appwrite-sync/connector/sink/meilisink"
	"github.com/appwrite-sync/appwrite-sync/internal/appwritetest"
	"github.com/appwrite-sync/appwrite-sync/internal/meilitest"
	"github.com/appwrite-sync/appwrite-sync/internal/pgtest"
	"github.com/appwrite-sync/appwrite-sync/migrations"
)

// relConfig: authors recorded for joins only, posts in both sinks with the author's name
// joined through `relationships:`.
func relConfig(t *testing.T, state, meiliURL, extra string) *config.Config {
	t.Helper()
	ports, err := pgtest.FreePorts(2)
	require.NoError(t, err)
	return parseText(t, relConfigText(ports, state, meiliURL, extra, "    relationships: {author: authors}\n"))
}

// relConfigText renders relConfig's text with rels as the posts' relationships lines.
func relConfigText(ports []int, state, meiliURL, extra, rels string) string {
	return fmt.Sprintf(`
listen: "127.0.0.1:%d"
admin: {listen: "127.0.0.1:%d", token: %q}
webhooks: [{url: %q, signing_keys: [%q]}]
state: {database_url: %q, group_commit_wait: 1ms}
warehouse: {schema: wh}
meilisearch: {url: %q, timeout: 5s}
delivery: {lease: 5s, poll_interval: 20ms, max_backoff: 500ms}
server: {shutdown_timeout: 5s, drain_delay: 0s}
log: {level: warn, format: text}
%s
tables:
  - database: main
    table: authors
  - database: main
    table: posts
%s    meilisearch: {index: posts, fields: [title, {author_name: author.name}]}
    postgres: {table: posts, columns: {title: text, author_name: {from: author.name, type: text}}}
`, ports[0], ports[1], testToken, webhookURL, testSecret, state, meiliURL, extra, rels)
}

// postRow sends a signed row webhook of main/<table> and requires a 200.
func postRow(t *testing.T, base, table, id, action, body string) {
	t.Helper()
	status, text := postEvent(base, table, id, action, body)
	require.Equal(t, 200, status, text)
}

// postEvent sends a signed row webhook of main/<table>; status 0 when it was not answered.
func postEvent(base, table, id, action, body string) (int, string) {
	req, err := http.NewRequest(http.MethodPost, base+"/webhooks/appwrite", bytes.NewReader([]byte(body)))
	if err != nil {
		return 0, err.Error()
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Appwrite-Webhook-Events", fmt.Sprintf("databases.main.tables.%s.rows.%s.%s,databases.*.tables.*.rows.*.%s", table, id, action, action))
	req.Header.Set("X-Appwrite-Webhook-Signature", sign(webhookURL, []byte(body)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b)
}

// relRow is the body of a row of main/<table> with extra fields (JSON, without braces).
func relRow(table, id string, at time.Time, fields string) string {
	return fmt.Sprintf(`{"$id":%q,"$sequence":"1","$databaseId":"main","$tableId":%q,"$createdAt":"2026-01-01T00:00:00.000+00:00","$updatedAt":%q,"$permissions":[],%s}`,
		id, table, at.UTC().Format("2006-01-02T15:04:05.000+00:00"), fields)
}

// joinedNames returns author_name per post id in the warehouse and in the index (nil: null).
func joinedNames(t *testing.T, state string, d *meiliDouble) (wh, meili map[string]any) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, state)
	require.NoError(t, err)
	defer conn.Close(ctx)
	wh = map[string]any{}
	rows, err := conn.Query(ctx, `SELECT id, author_name FROM wh.posts`)
	if err == nil { // the table exists once the sink started
		for rows.Next() {
			var id string
			var name *string
			require.NoError(t, rows.Scan(&id, &name))
			if name != nil {
				wh[id] = *name
			} else {
				wh[id] = nil
			}
		}
		require.NoError(t, rows.Err())
	}
	meili = map[string]any{}
	for _, doc := range d.srv.Documents("posts") {
		meili[doc["$id"].(string)] = doc["author_name"]
	}
	return wh, meili
}

// waitNames waits until both sinks hold exactly n posts, each with author name want.
func waitNames(t *testing.T, state string, d *meiliDouble, n int, want any) {
	t.Helper()
	var wh, meili map[string]any
	ok := func(m map[string]any) bool {
		if len(m) != n {
			return false
		}
		for _, v := range m {
			if v != want {
				return false
			}
		}
		return true
	}
	require.Eventually(t, func() bool {
		wh, meili = joinedNames(t, state, d)
		return ok(wh) && ok(meili)
	}, 30*time.Second, 20*time.Millisecond, "both sinks: %d posts by %v", n, want)
}

// Posts recorded before their author fill in when it arrives; renaming the author and
// deleting it re-project every one of its posts in the warehouse and in Meilisearch.
func TestRelationshipsBothSinks(t *testing.T) {
	t.Parallel()
	state := pgtest.NewMigratedDatabase(t, migrations.Up)
	d := newMeili(t, meilitest.Options{})
	in := startInstance(t, relConfig(t, state, d.url, ""))
	at := time.Date(2026, 3, 26, 10, 0, 0, 0, time.UTC)
	const n = 120
	for i := range n {
		id := fmt.Sprintf("p%03d", i)
		author := `"author":"a1"`
		if i%2 == 1 { // the nested shape, with a name that is not the truth
			author = `"author":{"$id":"a1","name":"stale"}`
		}
		postRow(t, in.base, "posts", id, "create", relRow("posts", id, at, fmt.Sprintf(`"title":"t%d",%s`, i, author)))
	}
	waitNames(t, state, d, n, nil)

	for v, name := range []string{"Ann", "Ann Renamed"} {
		postRow(t, in.base, "authors", "a1", "update", relRow("authors", "a1", at.Add(time.Duration(v+1)*time.Second), fmt.Sprintf(`"name":%q`, name)))
		waitNames(t, state, d, n, name)
	}
	postRow(t, in.base, "authors", "a1", "delete", relRow("authors", "a1", at.Add(time.Hour), `"name":"Ann Renamed"`))
	waitNames(t, state, d, n, nil)
	require.Empty(t, deadLetters(t, in, meilisink.Name))

	_, body := adminGet(t, in, "/admin/status")
	require.Contains(t, body, `"fanout":{"queued":`)
	c, err := newAdminClient(in.cfg, "", "status")
	require.NoError(t, err)
	v, err := fetchStatus(context.Background(), c)
	require.NoError(t, err)
	require.NotNil(t, v.Fanout)
	var out bytes.Buffer
	writeStatus(&out, v)
	require.Regexp(t, `(?m)^relationship fan-outs queued: \d+$`, out.String())
}

// Backfilling the posts before their author records them with the author's id only; the
// backfill of the authors then fills every post's join in both sinks, and a later
// incremental backfill of a renamed author re-projects them again.
func TestRelationshipsBackfillBothTables(t *testing.T) {
	t.Parallel()
	state := pgtest.NewMigratedDatabase(t, migrations.Up)
	d := newMeili(t, meilitest.Options{})
	api := newAppwrite(t)
	authors := connector.TableKey{Database: "main", Table: "authors"}
	const n = 80
	for i := range n {
		// As Appwrite 1.8+ lists rows without a select of the relationship: its id only.
		api.Put(postsKey, map[string]any{"$id": fmt.Sprintf("p%03d", i), "title": fmt.Sprintf("t%d", i), "author": "a1"})
	}
	api.Put(authors, map[string]any{"$id": "a1", "name": "Ann"})
	in := startInstance(t, relConfig(t, state, d.url, fmt.Sprintf("appwrite: {endpoint: %q, project: %q, api_key: %q}",
		api.URL, appwritetest.ProjectDefault, appwritetest.APIKeyDefault)))

	j := waitJob(t, in.admin, startJob(t, in.admin, "main/posts", "full"), 20*time.Second)
	require.Equal(t, "succeeded", j.State, j.Error)
	waitNames(t, state, d, n, nil)
	j = waitJob(t, in.admin, startJob(t, in.admin, "main/authors", "full"), 20*time.Second)
	require.Equal(t, "succeeded", j.State, j.Error)
	waitNames(t, state, d, n, "Ann")

	api.Put(authors, map[string]any{"$id": "a1", "name": "Ann Renamed", "$updatedAt": api.Now().Add(time.Minute)})
	j = waitJob(t, in.admin, startJob(t, in.admin, "main/authors", "incremental"), 20*time.Second)
	require.Equal(t, "succeeded", j.State, j.Error)
	waitNames(t, state, d, n, "Ann Renamed")
}

// Declaring a relationship for rows already recorded reads their links from the stored
// source rows and re-projects them on the next start: the join fills in both sinks without
// asking Appwrite.
func TestMappingChangeAddingARelationshipReprojects(t *testing.T) {
	t.Parallel()
	state := pgtest.NewMigratedDatabase(t, migrations.Up)
	d := newMeili(t, meilitest.Options{})
	ports, err := pgtest.FreePorts(2)
	require.NoError(t, err)
	in := startInstance(t, parseText(t, relConfigText(ports, state, d.url, "", "")))
	at := time.Date(2026, 3, 26, 10, 0, 0, 0, time.UTC)
	const n = 40
	postRow(t, in.base, "authors", "a1", "create", relRow("authors", "a1", at, `"name":"Ann"`))
	for i := range n {
		id := fmt.Sprintf("p%03d", i)
		postRow(t, in.base, "posts", id, "create", relRow("posts", id, at, fmt.Sprintf(`"title":"t%d","author":"a1"`, i)))
	}
	waitNames(t, state, d, n, nil) // no relationship: "a1" has no name
	in.stop()

	startInstance(t, parseText(t, relConfigText(ports, state, d.url, "", "    relationships: {author: authors}\n")))
	waitNames(t, state, d, n, "Ann")
}
