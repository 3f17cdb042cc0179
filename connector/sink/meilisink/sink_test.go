package meilisink

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	meili "github.com/meilisearch/meilisearch-go"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/connector/sink"
	"github.com/appwrite-sync/appwrite-sync/connector/sink/sinktest"
	"github.com/appwrite-sync/appwrite-sync/internal/meilitest"
	"github.com/appwrite-sync/appwrite-sync/internal/pgtest"
	"github.com/appwrite-sync/appwrite-sync/mapping"
	"github.com/appwrite-sync/appwrite-sync/migrations"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestConformance runs the sink suite against the double. Poison sets the title to
// poisonMarker, which makes the row's addition task fail (see newDouble).
func TestConformance(t *testing.T) {
	t.Parallel()
	b := newDouble(t, meilitest.Options{MasterKey: "conformance-key"})
	sinktest.Run(t, sinktest.Harness{
		Open: func(t *testing.T, m *mapping.Mapping) sink.Sink {
			return b.open(t, m, func(o *Options) { o.APIKey = "conformance-key" })
		},
		Read: func(t *testing.T, id string) (sinktest.Stored, bool) {
			doc, ok := b.srv.Document("posts", EncodeID(id))
			if !ok {
				return sinktest.Stored{}, false
			}
			require.Equal(t, id, doc[mapping.FieldID], "the raw id is kept in $id")
			title, _ := doc["title"].(string)
			views, _ := doc["views"].(float64)
			return sinktest.Stored{Title: title, Views: int64(views)}, true
		},
		Poison:   func(row map[string]any) { row["title"] = poisonMarker },
		StateURL: pgtest.NewMigratedDatabase(t, migrations.Up),
	})
}

const settingsMapping = `
- database: main
  table: posts
  permissions: {field: read_roles}
  meilisearch:
    index: posts
    fields: [title, body, views, tags]
    searchable: [title, body]
    filterable: [tags]
    sortable: [views]
    displayed: [title, views, "$id"]
    ranking_rules: [words, typo, proximity, attribute, sort, exactness, "views:desc"]
    synonyms: {phone: [mobile, cellphone]}
    stop_words: [the, a]
- database: main
  table: users
  meilisearch: {index: people, primary_key: pk}
`

// Start creates each index with its primary key and applies every setting, "$id" and the
// permissions field included; a second Start changes nothing.
func TestStartCreatesIndexesWithPrimaryKeyAndSettings(t *testing.T) {
	t.Parallel()
	b := newDouble(t, meilitest.Options{})
	s := b.open(t, parseMapping(t, settingsMapping), nil)
	ctx := testContext(t)
	require.NoError(t, s.Start(ctx))

	info, ok := b.srv.Index("posts")
	require.True(t, ok)
	require.Equal(t, "id", info.PrimaryKey)
	st := info.Settings
	require.Equal(t, []any{"title", "body"}, st["searchableAttributes"])
	require.ElementsMatch(t, []any{"tags", "read_roles", "$id"}, st["filterableAttributes"])
	require.Equal(t, []any{"views"}, st["sortableAttributes"])
	require.Equal(t, []any{"title", "views", "$id"}, st["displayedAttributes"])
	require.Equal(t, []any{"words", "typo", "proximity", "attribute", "sort", "exactness", "views:desc"}, st["rankingRules"])
	require.Equal(t, map[string]any{"phone": []any{"mobile", "cellphone"}}, st["synonyms"])
	require.ElementsMatch(t, []any{"the", "a"}, st["stopWords"])

	people, ok := b.srv.Index("people")
	require.True(t, ok)
	require.Equal(t, "pk", people.PrimaryKey)
	require.Equal(t, []any{"$id"}, people.Settings["filterableAttributes"], "unset filterable: only $id is added")

	before := len(b.srv.Tasks())
	require.NoError(t, s.Start(ctx), "Start is idempotent")
	for _, tk := range b.srv.Tasks()[before:] {
		require.Equal(t, meilitest.TaskSucceeded, tk.Status, "%+v", tk)
		require.NotEqual(t, meilitest.TaskIndexCreation, tk.Type)
	}
	again, _ := b.srv.Index("posts")
	require.Equal(t, info.Settings, again.Settings)
}

// An index the mapping does not set filterable attributes for keeps its own, plus "$id"; an
// explicitly empty list is sent as empty (the SDK's settings object cannot carry one).
func TestStartKeepsUnsetSettingsAndSendsEmptyLists(t *testing.T) {
	t.Parallel()
	b := newDouble(t, meilitest.Options{})
	ctx := testContext(t)
	c := meili.New(b.url)
	ti, err := c.CreateIndex(ctx, &meili.IndexConfig{Uid: "posts"}) // no primary key yet
	require.NoError(t, err)
	_, err = c.WaitForTask(ctx, ti.TaskUID, time.Millisecond)
	require.NoError(t, err)
	ti, err = c.Index("posts").UpdateFilterableAttributes(ctx, &[]interface{}{"tags", map[string]any{"attributePatterns": []string{"genre*"}}})
	require.NoError(t, err)
	_, err = c.WaitForTask(ctx, ti.TaskUID, time.Millisecond)
	require.NoError(t, err)

	s := b.open(t, parseMapping(t, `
- database: main
  table: posts
  meilisearch: {index: posts, stop_words: []}
`), nil)
	require.NoError(t, s.Start(ctx))
	info, _ := b.srv.Index("posts")
	require.Equal(t, "id", info.PrimaryKey, "an index without a primary key gets the mapping's")
	require.Equal(t, []any{"tags", map[string]any{"attributePatterns": []any{"genre*"}}, "$id"}, info.Settings["filterableAttributes"])
	require.Equal(t, []any{}, info.Settings["stopWords"])
	n := len(b.srv.Tasks())
	require.NoError(t, s.Start(ctx))
	for _, tk := range b.srv.Tasks()[n:] {
		_, sentFilterable := tk.Details["filterableAttributes"]
		require.False(t, sentFilterable, "$id is filterable now: the filterable list is not sent again")
	}
}

// An existing index with another primary key is an error for its own table only: Start
// succeeds, the other table flows, and that table's rows are dead-lettered with the fix. Once
// the index is fixed, the next Apply after Recheck writes them again.
func TestPrimaryKeyMismatchAffectsOnlyItsTable(t *testing.T) {
	t.Parallel()
	b := newDouble(t, meilitest.Options{})
	ctx := testContext(t)
	c := meili.New(b.url)
	ti, err := c.CreateIndex(ctx, &meili.IndexConfig{Uid: "people", PrimaryKey: "objectID"})
	require.NoError(t, err)
	_, err = c.WaitForTask(ctx, ti.TaskUID, time.Millisecond)
	require.NoError(t, err)

	s := b.open(t, parseMapping(t, `
- database: main
  table: posts
  meilisearch: {index: posts, fields: [title]}
- database: main
  table: users
  meilisearch: {index: people, fields: [title]}
`), func(o *Options) { o.Recheck = 50 * time.Millisecond })
	require.NoError(t, s.Start(ctx), "one misconfigured index does not stop the sink")
	users := connector.TableKey{Database: "main", Table: "users"}
	items := []sink.Item{
		item(sinktest.Key, "p.1", 1, "post"),
		withKey(item(sinktest.Key, "u.1", 1, "user"), users),
		item(sinktest.Key, "p.2", 1, "post"),
	}
	err = s.Apply(ctx, items)
	var be *connector.BatchError
	require.ErrorAs(t, err, &be)
	require.Len(t, be.Failed, 1)
	require.True(t, connector.IsPermanent(be.Failed[1]))
	msg := be.Failed[1].Error()
	require.Contains(t, msg, `index "people"`)
	require.Contains(t, msg, `primary key "objectID" but the mapping says "id"`)
	require.Contains(t, msg, "primary_key: objectID")
	require.Contains(t, msg, "replay")
	require.Equal(t, 2, b.srv.DocumentCount("posts"))
	require.Zero(t, b.srv.DocumentCount("people"))

	// The operator deletes the index; the next Apply after Recheck sets it up and writes.
	ti, err = c.DeleteIndex(ctx, "people")
	require.NoError(t, err)
	_, err = c.WaitForTask(ctx, ti.TaskUID, time.Millisecond)
	require.NoError(t, err)
	time.Sleep(60 * time.Millisecond)
	require.NoError(t, s.Apply(ctx, items[1:2]))
	doc, ok := b.srv.Document("people", EncodeID("u.1"))
	require.True(t, ok)
	require.Equal(t, "user", doc["title"])
	info, _ := b.srv.Index("people")
	require.Equal(t, "id", info.PrimaryKey)
}

func item(key connector.TableKey, id string, sec int, title string) sink.Item {
	it := sinktest.Row(id, time.Date(2026, 3, 26, 10, 0, sec, 0, time.UTC), connector.OpUpsert, title, int64(sec), nil)
	it.Key = key
	return it
}

func withKey(it sink.Item, key connector.TableKey) sink.Item { it.Key = key; return it }

func del(id string, sec int) sink.Item {
	return sinktest.Row(id, time.Date(2026, 3, 26, 10, 0, sec, 0, time.UTC), connector.OpDelete, "", 0, nil)
}

// Dotted, dashed and 36-character ids are added under their encoding and deleted with the
// same one: nothing is left behind (Meilisearch would accept a delete of any other id
// silently).
func TestIDsRoundTripThroughAddAndDelete(t *testing.T) {
	t.Parallel()
	b := newDouble(t, meilitest.Options{})
	s := b.open(t, sinktest.Mapping(t), nil)
	ctx := testContext(t)
	require.NoError(t, s.Start(ctx))
	ids := []string{"a.b", "row.1-x", "dash-ed", "under_score", "0123456789abcdef0123456789abcdef0123", "v1.2.3.4.5.6.7.8.9.10.11.12.13.14.15"}
	var adds, dels []sink.Item
	for _, id := range ids {
		adds = append(adds, item(sinktest.Key, id, 1, "t-"+id))
		dels = append(dels, del(id, 2))
	}
	require.NoError(t, s.Apply(ctx, adds))
	docs := b.srv.Documents("posts")
	require.Len(t, docs, len(ids))
	for _, id := range ids {
		doc, ok := docs[EncodeID(id)]
		require.True(t, ok, id)
		require.Equal(t, id, doc["$id"])
		require.Equal(t, EncodeID(id), doc["id"])
	}
	require.NoError(t, s.Apply(ctx, dels))
	require.Zero(t, b.srv.DocumentCount("posts"), "every document was deleted by the id it was added under")
	require.NoError(t, s.Apply(ctx, []sink.Item{del("never.indexed", 3)}), "deleting an unknown id succeeds")
}

// Documents of a shared index carry "$table" and an id that encodes database/table/id.
func TestSharedIndex(t *testing.T) {
	t.Parallel()
	b := newDouble(t, meilitest.Options{})
	s := b.open(t, parseMapping(t, `
- database: main
  table: posts
  meilisearch: {index: content, shared_index: true, fields: [title]}
- database: main
  table: pages
  meilisearch: {index: content, shared_index: true, fields: [title]}
`), nil)
	ctx := testContext(t)
	require.NoError(t, s.Start(ctx))
	pages := connector.TableKey{Database: "main", Table: "pages"}
	require.NoError(t, s.Apply(ctx, []sink.Item{item(sinktest.Key, "x.1", 1, "post"), withKey(item(sinktest.Key, "x.1", 1, "page"), pages)}))
	docs := b.srv.Documents("content")
	require.Len(t, docs, 2)
	require.Equal(t, "main/posts", docs[EncodeID("main/posts/x.1")]["$table"])
	require.Equal(t, "page", docs[EncodeID("main/pages/x.1")]["title"])
	info, _ := b.srv.Index("content")
	require.ElementsMatch(t, []any{"$table", "$id"}, info.Settings["filterableAttributes"])
	require.NoError(t, s.Apply(ctx, []sink.Item{withKey(del("x.1", 2), pages)}))
	require.Equal(t, []string{EncodeID("main/posts/x.1")}, keys(b.srv.Documents("content")))
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// A failed task is halved until the documents at fault are alone: they come back with the
// Meilisearch code and message, everything else lands.
func TestFailedTaskIsBisected(t *testing.T) {
	t.Parallel()
	b := newDouble(t, meilitest.Options{})
	s := b.open(t, sinktest.Mapping(t), nil)
	ctx := testContext(t)
	require.NoError(t, s.Start(ctx))
	var items []sink.Item
	for i := 0; i < 40; i++ {
		title := fmt.Sprint("t", i)
		if i == 7 || i == 31 {
			title = poisonMarker
		}
		items = append(items, item(sinktest.Key, fmt.Sprintf("b.%d", i), 1, title))
	}
	items = append(items, del("gone.1", 1))
	b.srv.ResetCounters()
	err := s.Apply(ctx, items)
	var be *connector.BatchError
	require.ErrorAs(t, err, &be)
	require.Len(t, be.Failed, 2)
	for _, i := range []int{7, 31} {
		require.True(t, connector.IsPermanent(be.Failed[i]))
		require.Contains(t, be.Failed[i].Error(), poisonCode)
		require.Contains(t, be.Failed[i].Error(), "meilitest: injected task failure")
	}
	require.Equal(t, 38, b.srv.DocumentCount("posts"))
	adds := b.srv.Counters().TasksByType[meilitest.TaskDocumentAdditionOrUpdate]
	require.LessOrEqual(t, adds, int64(1+2*2*6), "bisection costs O(bad × log n) tasks")
}

// Batches are bounded by count and bytes; a 413 splits further, and a document larger than the
// server's limit on its own is rejected permanently.
func TestBatchLimitsAndPayloadTooLarge(t *testing.T) {
	t.Parallel()
	b := newDouble(t, meilitest.Options{PayloadLimit: 4000})
	ctx := testContext(t)
	s := b.open(t, sinktest.Mapping(t), func(o *Options) { o.BatchSize = 3 })
	require.NoError(t, s.Start(ctx))
	var items []sink.Item
	for i := 0; i < 10; i++ {
		items = append(items, item(sinktest.Key, fmt.Sprint("c", i), 1, "small"))
	}
	b.srv.ResetCounters()
	require.NoError(t, s.Apply(ctx, items))
	require.Equal(t, int64(4), b.srv.Counters().TasksByType[meilitest.TaskDocumentAdditionOrUpdate], "10 documents, 3 per task")

	s2 := b.open(t, sinktest.Mapping(t), func(o *Options) { o.BatchBytes = 1 << 20 })
	items = items[:0]
	for i := 0; i < 30; i++ {
		items = append(items, item(sinktest.Key, fmt.Sprint("big", i), 2, strings.Repeat("x", 300)))
	}
	items = append(items, item(sinktest.Key, "huge", 2, strings.Repeat("y", 5000)))
	b.srv.ResetCounters()
	err := s2.Apply(ctx, items)
	var be *connector.BatchError
	require.ErrorAs(t, err, &be)
	require.Len(t, be.Failed, 1)
	require.Contains(t, be.Failed[30].Error(), "payload_too_large")
	require.Equal(t, 10+30, b.srv.DocumentCount("posts"))
	require.Positive(t, b.srv.Counters().RequestsByRoute["POST /indexes/{uid}/documents"])

	s3 := b.open(t, sinktest.Mapping(t), func(o *Options) { o.BatchBytes = 1000 })
	b.srv.ResetCounters()
	require.NoError(t, s3.Apply(ctx, items[:30]))
	require.GreaterOrEqual(t, b.srv.Counters().TasksByType[meilitest.TaskDocumentAdditionOrUpdate], int64(10), "≤ 1000 bytes per body: ~3 documents per task")
}

// Server errors, dropped connections and failed-for-internal-reasons tasks pause the sink
// (ErrSinkUnavailable), never dead-letter; bad credentials are ErrUnauthorized.
func TestUnavailableAndUnauthorized(t *testing.T) {
	t.Parallel()
	b := newDouble(t, meilitest.Options{MasterKey: "right-key"})
	ctx := testContext(t)
	m := sinktest.Mapping(t)
	bad := b.open(t, m, func(o *Options) { o.APIKey = "wrong-key" })
	err := bad.Start(ctx)
	require.ErrorIs(t, err, connector.ErrUnauthorized)
	require.NotErrorIs(t, err, connector.ErrSinkUnavailable)

	s := b.open(t, m, func(o *Options) { o.APIKey = "right-key" })
	require.NoError(t, s.Start(ctx))
	items := []sink.Item{item(sinktest.Key, "u.1", 1, "a"), item(sinktest.Key, "u.2", 1, "b")}

	for name, inject := range map[string]func(){
		"503":           func() { b.srv.InjectHTTPError(http.StatusServiceUnavailable, 1) },
		"500":           func() { b.srv.InjectHTTPError(http.StatusInternalServerError, 1) },
		"dropped":       func() { b.srv.DropConnections(1) },
		"internal task": func() { b.srv.FailNextTask("internal", "disk on fire") },
		"poll failing":  func() { b.srv.InjectHTTPErrorMatching(http.StatusBadGateway, pollFailures, isTaskPoll) },
	} {
		inject()
		err := s.Apply(ctx, items)
		require.ErrorIs(t, err, connector.ErrSinkUnavailable, name)
		var be *connector.BatchError
		require.False(t, errors.As(err, &be), name)
		require.NoError(t, s.Apply(ctx, items), "%s: recovers", name)
	}
	b.srv.InjectHTTPError(http.StatusForbidden, 1)
	require.ErrorIs(t, s.Apply(ctx, items), connector.ErrUnauthorized)
	// A single failed poll is absorbed: one 503 does not make the batch be re-sent.
	b.srv.InjectHTTPErrorMatching(http.StatusServiceUnavailable, 1, isTaskPoll)
	require.NoError(t, s.Apply(ctx, items))

	// A context that ends while the task is pending is "unavailable" too (the engine pauses).
	b.srv.Pause()
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	err = s.Apply(short, items)
	require.ErrorIs(t, err, connector.ErrSinkUnavailable)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	b.srv.Resume()
}

func isTaskPoll(r *http.Request) bool { return r.Method == http.MethodGet && r.URL.Path == "/tasks" }

// Many Apply calls in flight share the task polling: one GET /tasks?uids=… per round, never a
// GET per task.
func TestConcurrentAppliesPollTasksInBulk(t *testing.T) {
	t.Parallel()
	b := newDouble(t, meilitest.Options{TaskDelay: 2 * time.Millisecond})
	s := b.open(t, sinktest.Mapping(t), nil)
	ctx := testContext(t)
	require.NoError(t, s.Start(ctx))
	b.srv.ResetCounters()
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				id := fmt.Sprintf("w%d.%d", w, i)
				items := []sink.Item{item(sinktest.Key, id, 1, "x"), del("nothing."+id, 1)}
				require.NoError(t, s.Apply(ctx, items))
			}
		}()
	}
	wg.Wait()
	c := b.srv.Counters()
	tasks := c.TasksByType[meilitest.TaskDocumentAdditionOrUpdate] + c.TasksByType[meilitest.TaskDocumentDeletion]
	require.Equal(t, int64(160), tasks)
	require.Zero(t, c.RequestsByRoute["GET /tasks/{uid}"])
	require.Less(t, c.RequestsByRoute["GET /tasks"], tasks, "polls are shared between tasks and workers")
	require.Equal(t, 80, b.srv.DocumentCount("posts"))
	t.Logf("%d tasks observed with %d polls", tasks, c.RequestsByRoute["GET /tasks"])
}

// Options are validated with messages naming the fix.
func TestNewValidatesOptions(t *testing.T) {
	t.Parallel()
	_, err := New(Options{URL: "http://127.0.0.1:7700"})
	require.ErrorContains(t, err, "Mapping")
	_, err = New(Options{URL: "127.0.0.1:7700", Mapping: sinktest.Mapping(t)})
	require.ErrorContains(t, err, "not an http(s) URL")
	s, err := New(Options{URL: "http://127.0.0.1:7700/", Mapping: sinktest.Mapping(t)})
	require.NoError(t, err)
	require.Equal(t, Name, s.Name())
	require.True(t, s.Handles(sinktest.Key))
	require.False(t, s.Handles(connector.TableKey{Database: "main", Table: "other"}))
	require.NoError(t, s.Close())
	require.NoError(t, s.Close())
}

// Rows that cannot become documents fail alone and permanently: a source row that is not a
// JSON object, an id too long to encode within Meilisearch's 511 bytes. Deleting such an id
// succeeds (no document can hold it).
func TestUnprojectableRowsFailAlone(t *testing.T) {
	t.Parallel()
	b := newDouble(t, meilitest.Options{})
	s := b.open(t, sinktest.Mapping(t), nil)
	ctx := testContext(t)
	require.NoError(t, s.Start(ctx))
	long := strings.Repeat("l.", 200) // 400 bytes, 600 once encoded
	notObject := item(sinktest.Key, "no.object", 1, "x")
	notObject.Row = []byte(`["not", "an", "object"]`)
	err := s.Apply(ctx, []sink.Item{item(sinktest.Key, "fine.1", 1, "ok"), notObject, item(sinktest.Key, long, 1, "too long"), del(long, 2)})
	var be *connector.BatchError
	require.ErrorAs(t, err, &be)
	require.Len(t, be.Failed, 2)
	require.True(t, connector.IsPermanent(be.Failed[1]))
	require.Contains(t, be.Failed[1].Error(), mapping.ReasonNotAnObject)
	require.Equal(t, 1, strings.Count(be.Failed[1].Error(), "JSON object"), "said once: %v", be.Failed[1])
	require.True(t, connector.IsPermanent(be.Failed[2]))
	require.Contains(t, be.Failed[2].Error(), reasonIDTooLong)
	_, ok := b.srv.Document("posts", "fine-1")
	require.False(t, ok)
	_, ok = b.srv.Document("posts", EncodeID("fine.1"))
	require.True(t, ok, "the rest of the batch lands")
}
