package appwritetest_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/internal/appwritetest"
)

var posts = connector.TableKey{Database: "main", Table: "posts"}

type answer struct {
	status int
	header http.Header
	body   map[string]any
}

// get sends a request the way a client would; key "" sends no key.
func get(t *testing.T, s *appwritetest.Server, path, key string, queries ...string) answer {
	t.Helper()
	v := url.Values{}
	for _, q := range queries {
		if q == "total=false" {
			v.Set("total", "false")
			continue
		}
		v.Add("queries[]", q)
	}
	u := s.URL + path
	if len(v) > 0 {
		u += "?" + v.Encode()
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	require.NoError(t, err)
	req.Header.Set("X-Appwrite-Project", appwritetest.ProjectDefault)
	if key != "" {
		req.Header.Set("X-Appwrite-Key", key)
	}
	resp, err := s.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m), string(b))
	return answer{status: resp.StatusCode, header: resp.Header, body: m}
}

const key = appwritetest.APIKeyDefault

func rowsPath(k connector.TableKey) string {
	return "/tablesdb/" + k.Database + "/tables/" + k.Table + "/rows"
}

func docsPath(k connector.TableKey) string {
	return "/databases/" + k.Database + "/collections/" + k.Table + "/documents"
}

// field returns one field of every row of a list answer.
func field(t *testing.T, a answer, listKey, name string) []any {
	t.Helper()
	require.Equal(t, http.StatusOK, a.status, a.body)
	list, ok := a.body[listKey].([]any)
	require.True(t, ok, a.body)
	out := make([]any, len(list))
	for i, r := range list {
		out[i] = r.(map[string]any)[name]
	}
	return out
}

func seqs(t *testing.T, a answer) []any { return field(t, a, "rows", "$sequence") }

func nums(ns ...int) []any {
	out := make([]any, len(ns))
	for i, n := range ns {
		out[i] = float64(n)
	}
	return out
}

func TestListQueries(t *testing.T) {
	t.Parallel()
	s := appwritetest.New(appwritetest.Options{})
	defer s.Close()
	for i := 1; i <= 30; i++ {
		s.Advance(time.Millisecond * time.Duration(31-i)) // later rows get... later times, but not in id order
		s.Put(posts, map[string]any{"$id": fmt.Sprintf("r%02d", 31-i), "n": i})
	}
	p := rowsPath(posts)

	assert.Len(t, seqs(t, get(t, s, p, key)), 25, "default limit 25")
	assert.Equal(t, nums(10, 11, 12), seqs(t, get(t, s, p, key,
		`{"method":"greaterThan","attribute":"$sequence","values":["9"]}`,
		`{"method":"limit","values":[3]}`)), "numeric, not lexicographic")
	assert.Equal(t, nums(9, 10), seqs(t, get(t, s, p, key,
		`{"method":"greaterThanEqual","attribute":"$sequence","values":["9"]}`,
		`{"method":"lessThan","attribute":"$sequence","values":["11"]}`)))
	assert.Equal(t, nums(30, 29), seqs(t, get(t, s, p, key,
		`{"method":"orderDesc","attribute":"$sequence"}`, `{"method":"limit","values":[2]}`)))
	assert.Equal(t, nums(28, 27), seqs(t, get(t, s, p, key,
		`{"method":"orderDesc","attribute":"$sequence"}`, `{"method":"cursorAfter","values":["r02"]}`,
		`{"method":"limit","values":[2]}`)), "r02 has sequence 29")
	assert.Equal(t, nums(6, 7), seqs(t, get(t, s, p, key,
		`{"method":"offset","values":[5]}`, `{"method":"limit","values":[2]}`)))
	assert.Equal(t, []any{"r01", "r02"}, field(t, get(t, s, p, key,
		`{"method":"orderAsc","attribute":"$id"}`, `{"method":"limit","values":[2]}`), "rows", "$id"))
	assert.Equal(t, nums(4, 17), seqs(t, get(t, s, p, key,
		`{"method":"equal","attribute":"$id","values":["r27","r14"]}`)))

	a := get(t, s, p, key, `{"method":"select","values":["$id"]}`, `{"method":"limit","values":[1]}`)
	row := a.body["rows"].([]any)[0].(map[string]any)
	assert.NotContains(t, row, "n")
	assert.Contains(t, row, "$updatedAt")

	a = get(t, s, p, key, `{"method":"limit","values":[1]}`)
	row = a.body["rows"].([]any)[0].(map[string]any)
	for _, k := range []string{"$id", "$sequence", "$createdAt", "$updatedAt", "$permissions", "$databaseId", "$tableId", "n"} {
		assert.Contains(t, row, k)
	}
	assert.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$`, row["$updatedAt"])
	assert.EqualValues(t, 30, a.body["total"])
	assert.EqualValues(t, 0, get(t, s, p, key, "total=false").body["total"], "total=false skips counting")
}

func TestUpdatedAtFilterAndOrder(t *testing.T) {
	t.Parallel()
	s := appwritetest.New(appwritetest.Options{})
	defer s.Close()
	base := time.Date(2026, 3, 26, 10, 0, 0, 0, time.UTC)
	for i, off := range []int{5, 1, 3, 1, 0} {
		s.Put(posts, map[string]any{"$id": fmt.Sprintf("r%d", i+1), "$updatedAt": base.Add(time.Duration(off) * time.Millisecond)})
	}
	a := get(t, s, rowsPath(posts), key,
		`{"method":"greaterThanEqual","attribute":"$updatedAt","values":["2026-03-26T12:00:00.001+02:00"]}`,
		`{"method":"orderAsc","attribute":"$updatedAt"}`, `{"method":"orderAsc","attribute":"$sequence"}`)
	assert.Equal(t, []any{"r2", "r4", "r3", "r1"}, field(t, a, "rows", "$id"))
	a = get(t, s, rowsPath(posts), key,
		`{"method":"orderAsc","attribute":"$updatedAt"}`, `{"method":"cursorAfter","values":["r2"]}`)
	assert.Equal(t, []any{"r4", "r3", "r1"}, field(t, a, "rows", "$id"), "cursor over a compound order")
}

func TestCursorNotFound(t *testing.T) {
	t.Parallel()
	s := appwritetest.New(appwritetest.Options{})
	defer s.Close()
	s.Seed(posts, 10, 100)
	require.True(t, s.Delete(posts, "seed-5"))
	a := get(t, s, rowsPath(posts), key, `{"method":"cursorAfter","values":["seed-5"]}`)
	assert.Equal(t, http.StatusBadRequest, a.status)
	assert.Equal(t, "general_cursor_not_found", a.body["type"])
	assert.Equal(t, "Row 'seed-5' for the 'cursor' value not found.", a.body["message"])
	a = get(t, s, rowsPath(posts), key, `{"method":"greaterThan","attribute":"$sequence","values":["5"]}`)
	assert.Equal(t, nums(6, 7, 8, 9, 10), seqs(t, a))
}

func TestErrors(t *testing.T) {
	t.Parallel()
	s := appwritetest.New(appwritetest.Options{Scopes: []string{"rows.read"}})
	defer s.Close()
	s.Put(posts, map[string]any{"$id": "public", "$permissions": []string{`read("any")`}})
	s.Put(posts, map[string]any{"$id": "private", "$permissions": []string{`read("users")`}})
	p := rowsPath(posts)

	cases := []struct {
		name, path, key string
		queries         []string
		status          int
		typ             string
	}{
		{"wrong key", p, "nope", nil, 401, "user_unauthorized"},
		{"unknown database", rowsPath(connector.TableKey{Database: "x", Table: "posts"}), key, nil, 404, "database_not_found"},
		{"unknown table", rowsPath(connector.TableKey{Database: "main", Table: "x"}), key, nil, 404, "table_not_found"},
		{"missing row", p + "/x", key, nil, 404, "row_not_found"},
		{"bad query", p, key, []string{`{"method":"search","attribute":"title","values":["x"]}`}, 400, "general_query_invalid"},
		{"not json", p, key, []string{`limit(5)`}, 400, "general_query_invalid"},
		{"bad sequence", p, key, []string{`{"method":"greaterThan","attribute":"$sequence","values":["abc"]}`}, 400, "general_query_invalid"},
		{"unknown route", "/tablesdb/main/tables/posts/nope", key, nil, 404, "general_route_not_found"},
		{"webhooks before 1.9", "/webhooks/x", key, nil, 404, "general_route_not_found"},
		{"legacy needs documents.read", docsPath(posts), key, nil, 401, "general_unauthorized_scope"},
	}
	for _, tc := range cases {
		a := get(t, s, tc.path, tc.key, tc.queries...)
		assert.Equal(t, tc.status, a.status, tc.name)
		assert.Equal(t, tc.typ, a.body["type"], tc.name)
		assert.EqualValues(t, tc.status, a.body["code"], tc.name)
		assert.Equal(t, appwritetest.VersionDefault, a.body["version"], tc.name)
	}
	a := get(t, s, docsPath(posts), key)
	assert.Regexp(t, `^app\.test-project@service\.127\.0\.0\.1 \(role: applications\) missing scopes \(\["documents\.read"\]\)$`, a.body["message"])

	many := make([]string, 101)
	for i := range many {
		many[i] = `{"method":"limit","values":[1]}`
	}
	a = get(t, s, p, key, many...)
	assert.Equal(t, "general_argument_invalid", a.body["type"])

	// No key at all: a guest, who sees only rows readable by "any".
	assert.Equal(t, []any{"public"}, field(t, get(t, s, p, ""), "rows", "$id"))
	assert.Equal(t, 404, get(t, s, p+"/private", "").status)
}

func TestLegacyServer(t *testing.T) {
	t.Parallel()
	s := appwritetest.New(appwritetest.Options{Legacy: true, SequenceAsString: true})
	defer s.Close()
	s.Seed(posts, 3, 100)
	a := get(t, s, rowsPath(posts), key)
	assert.Equal(t, 404, a.status)
	assert.Equal(t, "general_route_not_found", a.body["type"])
	assert.Equal(t, appwritetest.LegacyVersionDefault, a.body["version"])

	a = get(t, s, docsPath(posts), key)
	assert.Equal(t, []any{"1", "2", "3"}, field(t, a, "documents", "$sequence"))
	assert.Equal(t, []any{"posts", "posts", "posts"}, field(t, a, "documents", "$collectionId"))
	assert.Equal(t, "document_not_found", get(t, s, docsPath(posts)+"/x", key).body["type"])
	assert.Equal(t, "collection_not_found", get(t, s, docsPath(connector.TableKey{Database: "main", Table: "x"}), key).body["type"])
}

func TestPutUpdateDelete(t *testing.T) {
	t.Parallel()
	s := appwritetest.New(appwritetest.Options{})
	defer s.Close()
	t0 := s.Now()
	s.Put(posts, map[string]any{"$id": "a", "title": "one"})
	s.Put(posts, map[string]any{"$id": "b"})
	s.Advance(1500 * time.Millisecond)
	row := s.Put(posts, map[string]any{"$id": "a", "title": "two"})

	var m map[string]any
	require.NoError(t, json.Unmarshal(row, &m))
	assert.EqualValues(t, 1, m["$sequence"], "an update keeps $sequence")
	assert.Equal(t, t0.Format("2006-01-02T15:04:05.000-07:00"), m["$createdAt"])
	assert.Equal(t, t0.Add(1500*time.Millisecond).Format("2006-01-02T15:04:05.000-07:00"), m["$updatedAt"])
	assert.Equal(t, "two", m["title"])
	assert.Equal(t, []any{}, m["$permissions"])

	s.Put(posts, map[string]any{"$id": "c", "$updatedAt": "2020-01-01T00:00:00.000+00:00"})
	rows := s.Rows(posts)
	require.Len(t, rows, 3)
	assert.Contains(t, string(rows[2]), `"$sequence":3,`)
	assert.Contains(t, string(rows[2]), `"$updatedAt":"2020-01-01T00:00:00.000+00:00"`)

	assert.True(t, s.Delete(posts, "b"))
	assert.False(t, s.Delete(posts, "b"))
	assert.Equal(t, 2, s.Len(posts))
	s.Put(posts, map[string]any{"$id": "b"})
	assert.Contains(t, string(s.Rows(posts)[2]), `"$sequence":4,`, "a re-created row gets a new sequence")

	assert.Panics(t, func() { s.Put(posts, map[string]any{"title": "no id"}) })
}

func TestSeededRows(t *testing.T) {
	t.Parallel()
	s := appwritetest.New(appwritetest.Options{})
	defer s.Close()
	s.Seed(posts, 5, 1000)
	rows := s.Rows(posts)
	require.Len(t, rows, 5)
	for _, r := range rows {
		assert.InDelta(t, 1000, len(r), 100, "about rowBytes bytes")
		assert.True(t, json.Valid(r))
	}
	s.Put(posts, map[string]any{"$id": "seed-2", "title": "edited"})
	a := get(t, s, rowsPath(posts)+"/seed-2", key)
	assert.Equal(t, "edited", a.body["title"])
	assert.EqualValues(t, 2, a.body["$sequence"])
	assert.True(t, s.Delete(posts, "seed-3"))
	assert.Equal(t, 404, get(t, s, rowsPath(posts)+"/seed-3", key).status)
	assert.Equal(t, 404, get(t, s, rowsPath(posts)+"/seed-03", key).status)
}

func TestFaultsAndHang(t *testing.T) {
	t.Parallel()
	s := appwritetest.New(appwritetest.Options{})
	defer s.Close()
	s.CreateTable(posts)
	s.Inject(appwritetest.Fault{Status: 429, Type: "general_rate_limit_exceeded", Header: http.Header{"Retry-After": {"3"}}, Count: 1})
	s.InjectError(500, "general_server_error", 1)
	a := get(t, s, rowsPath(posts), key)
	assert.Equal(t, 429, a.status)
	assert.Equal(t, "3", a.header.Get("Retry-After"))
	assert.Equal(t, 500, get(t, s, rowsPath(posts), key).status)
	assert.Equal(t, 200, get(t, s, rowsPath(posts), key).status)

	s.SetLatency(50 * time.Millisecond)
	start := time.Now()
	get(t, s, rowsPath(posts), key)
	assert.GreaterOrEqual(t, time.Since(start), 50*time.Millisecond)
	s.SetLatency(0)

	// A hanging request ends when the server closes, and Close does not wait for it.
	s.Hang(1)
	done := make(chan error, 1)
	go func() {
		// A connection of its own: on a reused keep-alive connection the transport would retry
		// the GET elsewhere when the server closes it, and the retry could succeed.
		c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := c.Get(s.URL + rowsPath(posts))
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	require.Eventually(t, func() bool { return s.Stats().Hung == 1 }, 5*time.Second, 5*time.Millisecond)
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close blocked on a hanging request")
	}
	assert.Error(t, <-done)
	s.Close() // twice is fine
}

func TestWebhook(t *testing.T) {
	t.Parallel()
	s := appwritetest.New(appwritetest.Options{Version: "1.9.2"})
	defer s.Close()
	s.SetWebhook("wh", true, 3)
	a := get(t, s, "/webhooks/wh", key)
	require.Equal(t, 200, a.status)
	assert.Equal(t, true, a.body["enabled"])
	assert.EqualValues(t, 3, a.body["attempts"])
	assert.Equal(t, "", a.body["secret"])
	assert.Equal(t, "webhook_not_found", get(t, s, "/webhooks/other", key).body["type"])
	assert.Equal(t, "general_unauthorized_scope", get(t, s, "/webhooks/wh", "").body["type"], "guests lack webhooks.read")
}

// TestMillionRowKeysetScan pages through a million seeded rows by keyset, 1000 at a time, as
// the backfill benchmark does: it must stay fast and cheap (about 1s without -race).
func TestMillionRowKeysetScan(t *testing.T) {
	if testing.Short() {
		t.Skip("1M rows")
	}
	t.Parallel()
	s := appwritetest.New(appwritetest.Options{})
	defer s.Close()
	n := 1_000_000
	if raceEnabled {
		n = 200_000 // the race detector makes every byte copied ~20 times slower
	}
	start := time.Now()
	s.Seed(posts, n, 300)
	t.Logf("seeded %d rows in %s", n, time.Since(start))

	client := s.Client()
	after, total := "", 0
	start = time.Now()
	for {
		v := url.Values{"total": {"false"}}
		v.Add("queries[]", `{"method":"orderAsc","attribute":"$sequence"}`)
		v.Add("queries[]", `{"method":"limit","values":[1000]}`)
		if after != "" {
			v.Add("queries[]", `{"method":"greaterThan","attribute":"$sequence","values":["`+after+`"]}`)
		}
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, s.URL+rowsPath(posts)+"?"+v.Encode(), nil)
		require.NoError(t, err)
		req.Header.Set("X-Appwrite-Project", appwritetest.ProjectDefault)
		req.Header.Set("X-Appwrite-Key", key)
		resp, err := client.Do(req)
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
		// Not decoded: this measures the double, not encoding/json under -race.
		rows := bytes.Count(body, []byte(`{"$id":"seed-`))
		if rows == 0 {
			break
		}
		total += rows
		i := bytes.LastIndex(body, []byte(`"$sequence":`)) + len(`"$sequence":`)
		j := bytes.IndexByte(body[i:], ',')
		next := string(body[i : i+j])
		require.NotEqual(t, after, next)
		after = next
	}
	require.True(t, json.Valid(body0(t, s)), "pages are valid JSON")
	t.Logf("scanned %d rows in %s", total, time.Since(start))
	assert.Equal(t, n, total)
}

// body0 fetches the first page of the table raw.
func body0(t *testing.T, s *appwritetest.Server) []byte {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, s.URL+rowsPath(posts)+"?total=false", nil)
	require.NoError(t, err)
	req.Header.Set("X-Appwrite-Project", appwritetest.ProjectDefault)
	req.Header.Set("X-Appwrite-Key", key)
	resp, err := s.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return b
}

// PUT /v1/webhooks/{id} as Appwrite 1.9 defines it: webhooks.write, name/url/events required,
// every setting replaced (tls defaults to false, enabled to true), attempts reset on enable.
func TestUpdateWebhook(t *testing.T) {
	t.Parallel()
	put := func(s *appwritetest.Server, body string) answer {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPut, s.URL+"/webhooks/wh", bytes.NewReader([]byte(body)))
		require.NoError(t, err)
		req.Header.Set("X-Appwrite-Project", appwritetest.ProjectDefault)
		req.Header.Set("X-Appwrite-Key", key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := s.Client().Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var m map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&m))
		return answer{status: resp.StatusCode, body: m}
	}
	s := appwritetest.New(appwritetest.Options{Version: "1.9.0"})
	defer s.Close()
	s.SetWebhook("wh", false, 10)
	a := put(s, `{"name":"n","url":"https://x.example.com/h","events":["rows.*"]}`)
	require.Equal(t, 401, a.status, "the default key lacks webhooks.write")
	assert.Equal(t, "general_unauthorized_scope", a.body["type"])

	s = appwritetest.New(appwritetest.Options{Version: "1.9.0", Scopes: []string{"webhooks.read", "webhooks.write"}})
	defer s.Close()
	s.SetWebhook("wh", false, 10)
	a = put(s, `{"url":"https://x.example.com/h","events":["rows.*"]}`)
	require.Equal(t, 400, a.status)
	assert.Equal(t, `Param "name" is not optional.`, a.body["message"])
	a = put(s, `{"name":"n","url":"https://x.example.com/h","events":["rows.*"]}`)
	require.Equal(t, 200, a.status)
	assert.Equal(t, true, a.body["enabled"])
	assert.EqualValues(t, 0, a.body["attempts"])
	assert.Equal(t, false, a.body["tls"], "tls left out is false")
	assert.Equal(t, "", a.body["authPassword"], "a password left out is removed")
	a = put(s, `{"name":"n","url":"https://x.example.com/h","events":["rows.*"],"enabled":false}`)
	assert.Equal(t, false, a.body["enabled"])

	old := appwritetest.New(appwritetest.Options{Version: "1.8.1"})
	defer old.Close()
	assert.Equal(t, 404, put(old, `{}`).status)
}
