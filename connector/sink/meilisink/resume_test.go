package meilisink

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	meili "github.com/meilisearch/meilisearch-go"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/connector/sink"
	"github.com/appwrite-sync/appwrite-sync/connector/sink/sinktest"
	"github.com/appwrite-sync/appwrite-sync/internal/meilitest"
)

const routeAddDocuments = "POST /indexes/{uid}/documents"

// timedOut applies items with a context that ends while the worker is paused: the wait for
// the tasks times out, as it does when Meilisearch is slow.
func timedOut(t *testing.T, s *Sink, items []sink.Item) {
	t.Helper()
	short, cancel := context.WithTimeout(testContext(t), 100*time.Millisecond)
	defer cancel()
	err := s.Apply(short, items)
	require.ErrorIs(t, err, connector.ErrSinkUnavailable)
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

// A retry after a task wait timed out waits on the tasks already enqueued instead of sending
// the batch again: sending it again would make Meilisearch do the work twice and could put an
// older write after a newer one.
func TestRetryAfterWaitTimeoutResumesTasks(t *testing.T) {
	t.Parallel()
	b := newDouble(t, meilitest.Options{})
	s := b.open(t, sinktest.Mapping(t), nil)
	ctx := testContext(t)
	require.NoError(t, s.Start(ctx))
	items := []sink.Item{item(sinktest.Key, "r.1", 1, "one"), item(sinktest.Key, "r.2", 1, "two"), del("r.gone", 1)}

	b.srv.Pause()
	b.srv.ResetCounters()
	timedOut(t, s, items)
	timedOut(t, s, items) // still paused: the second attempt waits again, sends nothing
	c := b.srv.Counters()
	require.Equal(t, int64(1), c.RequestsByRoute[routeAddDocuments])
	require.Equal(t, int64(1), c.RequestsByRoute["POST /indexes/{uid}/documents/delete-batch"])

	b.srv.Resume()
	require.NoError(t, s.Apply(ctx, items))
	c = b.srv.Counters()
	require.Equal(t, int64(1), c.RequestsByRoute[routeAddDocuments], "the retry sent no document again")
	require.Equal(t, int64(1), c.RequestsByRoute["POST /indexes/{uid}/documents/delete-batch"])
	require.Equal(t, int64(2), c.TasksByStatus[meilitest.TaskSucceeded])
	doc, ok := b.srv.Document("posts", EncodeID("r.1"))
	require.True(t, ok)
	require.Equal(t, "one", doc["title"])

	// Once its task was seen to finish, a version is sent again when asked again (a replay
	// after the document was removed by hand must restore it).
	require.NoError(t, s.Apply(ctx, items[:1]))
	require.Equal(t, int64(2), b.srv.Counters().RequestsByRoute[routeAddDocuments])
}

// Only the entries whose version and document are unchanged resume their task: a row that
// changed meanwhile (a newer version, or the same version projected differently, e.g. after a
// related row changed) is sent again, after the old task in Meilisearch's queue.
func TestRetryResendsChangedEntries(t *testing.T) {
	t.Parallel()
	b := newDouble(t, meilitest.Options{})
	s := b.open(t, sinktest.Mapping(t), nil)
	ctx := testContext(t)
	require.NoError(t, s.Start(ctx))
	first := []sink.Item{item(sinktest.Key, "c.1", 1, "same"), item(sinktest.Key, "c.2", 1, "old"), item(sinktest.Key, "c.3", 1, "old")}

	b.srv.Pause()
	b.srv.ResetCounters()
	timedOut(t, s, first)
	reprojected := item(sinktest.Key, "c.3", 1, "new")
	reprojected.Version = first[2].Version // same version, other document
	second := []sink.Item{first[0], item(sinktest.Key, "c.2", 2, "newer"), reprojected}
	b.srv.Resume()
	require.NoError(t, s.Apply(ctx, second))

	c := b.srv.Counters()
	require.Equal(t, int64(2), c.RequestsByRoute[routeAddDocuments], "one task resumed, one new for the two changed rows")
	require.Equal(t, int64(3+2), c.DocumentsReceived, "c.1 was not sent twice")
	for id, title := range map[string]string{"c.1": "same", "c.2": "newer", "c.3": "new"} {
		doc, ok := b.srv.Document("posts", EncodeID(id))
		require.True(t, ok, id)
		require.Equal(t, title, doc["title"], id)
	}
}

// A task that did not succeed is not waited on again: a canceled one (or a failed one) has
// its documents sent again on the next attempt.
func TestRetryResendsCanceledTask(t *testing.T) {
	t.Parallel()
	b := newDouble(t, meilitest.Options{})
	s := b.open(t, sinktest.Mapping(t), nil)
	ctx := testContext(t)
	require.NoError(t, s.Start(ctx))
	items := []sink.Item{item(sinktest.Key, "x.1", 1, "one")}

	b.srv.Pause()
	b.srv.ResetCounters()
	timedOut(t, s, items)
	tasks := b.srv.Tasks()
	last := tasks[len(tasks)-1]
	require.Equal(t, meilitest.TaskEnqueued, last.Status)
	_, err := meili.New(b.url).CancelTasks(ctx, &meili.CancelTasksQuery{UIDS: []int64{last.UID}})
	require.NoError(t, err)
	_, ok := b.srv.Step() // the cancelation runs first
	require.True(t, ok)
	canceled, _ := b.srv.Task(last.UID)
	require.Equal(t, meilitest.TaskCanceled, canceled.Status)

	b.srv.Resume()
	require.NoError(t, s.Apply(ctx, items))
	require.Equal(t, int64(2), b.srv.Counters().RequestsByRoute[routeAddDocuments])
	_, ok = b.srv.Document("posts", EncodeID("x.1"))
	require.True(t, ok)
}

// A task the server does not know (Meilisearch restarted on a fresh database) is sent again,
// also when its uid now names another task of the new database.
func TestRetryResendsTasksUnknownToTheServer(t *testing.T) {
	t.Parallel()
	for name, reuse := range map[string]bool{"not found": false, "uid reused": true} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)
			before := meilitest.NewUnstarted(meilitest.Options{})
			t.Cleanup(before.Close)
			var backend atomic.Pointer[meilitest.Server]
			backend.Store(before)
			proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				backend.Load().ServeHTTP(w, r)
			}))
			t.Cleanup(proxy.Close)
			b := &testBundle{srv: before, url: proxy.URL}
			s := b.open(t, sinktest.Mapping(t), nil)
			require.NoError(t, s.Start(ctx))
			items := []sink.Item{item(sinktest.Key, "f.1", 1, "one")}
			before.Pause()
			timedOut(t, s, items)
			tasks := before.Tasks()
			lost := tasks[len(tasks)-1].UID

			after := meilitest.New(meilitest.Options{})
			t.Cleanup(after.Close)
			if reuse {
				c := meili.New(after.URL)
				for i := int64(0); i <= lost; i++ {
					_, err := c.CreateIndex(ctx, &meili.IndexConfig{Uid: fmt.Sprint("other", i)})
					require.NoError(t, err)
				}
				require.NoError(t, after.WaitIdle(ctx))
				reused, ok := after.Task(lost)
				require.True(t, ok)
				require.Equal(t, meilitest.TaskSucceeded, reused.Status)
			}
			backend.Store(after)
			require.NoError(t, s.Apply(ctx, items))
			require.Equal(t, int64(1), after.Counters().RequestsByRoute[routeAddDocuments])
			doc, ok := after.Document("posts", EncodeID("f.1"))
			require.True(t, ok)
			require.Equal(t, "one", doc["title"])
		})
	}
}
