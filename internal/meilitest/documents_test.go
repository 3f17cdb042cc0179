package meilitest_test

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"strings"
	"testing"

	"github.com/meilisearch/meilisearch-go"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/internal/meilitest"
)

func TestAddDocumentsAnswers202WithSummarizedTask(t *testing.T) {
	t.Parallel()
	b := setup(t, meilitest.Options{})

	r := do(t, http.MethodPost, b.srv.URL+"/indexes/rows/documents?primaryKey=id", []byte(`[{"id":"a","n":1}]`), map[string]string{"Content-Type": "application/json"})
	require.Equal(t, http.StatusAccepted, r.status, "body: %s", r.body)
	m := r.json(t)
	require.Len(t, m, 5)
	require.Equal(t, float64(0), m["taskUid"], "task uids start at 0")
	require.Equal(t, "rows", m["indexUid"])
	require.Equal(t, "enqueued", m["status"])
	require.Equal(t, "documentAdditionOrUpdate", m["type"])
	require.NotEmpty(t, m["enqueuedAt"])

	info, err := b.client.Index("rows").AddDocuments(testContext(t), []map[string]any{{"id": "b"}}, &meilisearch.DocumentOptions{PrimaryKey: ptr("id")})
	require.NoError(t, err)
	require.Equal(t, int64(1), info.TaskUID, "uids are global and increasing")
	require.Equal(t, meilisearch.TaskStatusEnqueued, info.Status)
	require.Equal(t, meilisearch.TaskTypeDocumentAdditionOrUpdate, info.Type)

	task := b.succeeded(t)(info, nil)
	require.Equal(t, int64(1), task.Details.ReceivedDocuments)
	require.Equal(t, int64(1), task.Details.IndexedDocuments)
	require.False(t, task.StartedAt.IsZero())
	require.True(t, task.FinishedAt.After(task.StartedAt))
	require.True(t, strings.HasPrefix(task.Duration, "PT"), task.Duration)
	require.Equal(t, 2, b.srv.DocumentCount("rows"))
}

func TestInvalidDocumentIDFailsTheWholeTask(t *testing.T) {
	t.Parallel()
	b := setup(t, meilitest.Options{})
	ctx := testContext(t)
	idx := b.client.Index("rows")
	docs := []map[string]any{
		{"id": "ok-1", "title": "first"},
		{"id": "a.b", "title": "dot is not allowed"},
		{"id": "ok_2", "title": "third"},
	}
	info, err := idx.AddDocuments(ctx, docs, &meilisearch.DocumentOptions{PrimaryKey: ptr("id")})
	task := b.failed(t, meilisearch.APIErrCodeInvalidDocumentID)(info, err)
	require.Contains(t, task.Error.Message, "`\"a.b\"`")
	require.Equal(t, int64(3), task.Details.ReceivedDocuments)
	require.Zero(t, task.Details.IndexedDocuments)
	require.Empty(t, b.srv.Documents("rows"), "no document of a failed task is written")

	for _, bad := range []any{"", strings.Repeat("a", 512), "é", 1.5, true, map[string]any{"x": 1}} {
		info, err := idx.AddDocuments(ctx, []map[string]any{{"id": bad}}, &meilisearch.DocumentOptions{PrimaryKey: ptr("id")})
		b.failed(t, meilisearch.APIErrCodeInvalidDocumentID)(info, err)
	}
	for _, good := range []any{strings.Repeat("a", 511), 42, -7, "A-z_09"} {
		info, err := idx.AddDocuments(ctx, []map[string]any{{"id": good}}, &meilisearch.DocumentOptions{PrimaryKey: ptr("id")})
		b.succeeded(t)(info, err)
	}
	_, ok := b.srv.Document("rows", "42")
	require.True(t, ok, "integer ids are stored under their decimal form")
}

func TestMissingPrimaryKeyValueFailsTask(t *testing.T) {
	t.Parallel()
	b := setup(t, meilitest.Options{})
	info, err := b.client.Index("rows").AddDocuments(testContext(t), []map[string]any{{"id": "x"}, {"title": "no id"}}, &meilisearch.DocumentOptions{PrimaryKey: ptr("id")})
	task := b.failed(t, meilisearch.APIErrCodeMissingDocumentID)(info, err)
	require.Equal(t, "Document doesn't have a `id` attribute: `{\"title\":\"no id\"}`.", task.Error.Message)
	require.Zero(t, b.srv.DocumentCount("rows"))
}

func TestPrimaryKeyInference(t *testing.T) {
	t.Parallel()
	b := setup(t, meilitest.Options{})
	ctx := testContext(t)

	// An Appwrite row has several fields ending in "id": inference must fail.
	row := map[string]any{"$id": "r1", "$databaseId": "db", "$tableId": "t", "title": "x"}
	info, err := b.client.Index("appwrite").AddDocuments(ctx, []map[string]any{row}, nil)
	task := b.failed(t, meilisearch.APIErrCodeIndexPrimaryKeyMultipleCandidatesFound)(info, err)
	require.Equal(t, "The primary key inference failed as the engine found 3 fields ending with `id` in their names: '$databaseId' and '$id'. Please specify the primary key manually using the `primaryKey` query parameter.", task.Error.Message)
	ix, ok := b.srv.Index("appwrite")
	require.True(t, ok, "the index is created even though the addition failed")
	require.Empty(t, ix.PrimaryKey)

	info, err = b.client.Index("none").AddDocuments(ctx, []map[string]any{{"title": "x"}}, nil)
	b.failed(t, meilisearch.APIErrCodeIndexPrimaryKeyNoCandidateFound)(info, err)

	info, err = b.client.Index("one").AddDocuments(ctx, []map[string]any{{"bookID": 7, "title": "x"}}, nil)
	b.succeeded(t)(info, err)
	ix, _ = b.srv.Index("one")
	require.Equal(t, "bookID", ix.PrimaryKey, "inference is case-insensitive")

	// An explicit primary key makes the Appwrite row acceptable.
	info, err = b.client.Index("appwrite").AddDocuments(ctx, []map[string]any{row}, &meilisearch.DocumentOptions{PrimaryKey: ptr("$id")})
	b.succeeded(t)(info, err)
	ix, _ = b.srv.Index("appwrite")
	require.Equal(t, "$id", ix.PrimaryKey)
}

func TestExplicitPrimaryKeyMismatchFailsTask(t *testing.T) {
	t.Parallel()
	b := setup(t, meilitest.Options{})
	ctx := testContext(t)
	b.succeeded(t)(b.client.CreateIndex(ctx, &meilisearch.IndexConfig{Uid: "rows", PrimaryKey: "id"}))

	info, err := b.client.Index("rows").AddDocuments(ctx, []map[string]any{{"id": "a", "key": "k"}}, &meilisearch.DocumentOptions{PrimaryKey: ptr("key")})
	task := b.failed(t, meilisearch.APIErrCodeIndexPrimaryKeyAlreadyExists)(info, err)
	require.Equal(t, "Index already has a primary key: `id`.", task.Error.Message)

	// The same key again is fine, and so is omitting it.
	b.succeeded(t)(b.client.Index("rows").AddDocuments(ctx, []map[string]any{{"id": "a"}}, &meilisearch.DocumentOptions{PrimaryKey: ptr("id")}))
	b.succeeded(t)(b.client.Index("rows").AddDocuments(ctx, []map[string]any{{"id": "b"}}, nil))
}

func TestAddDocumentsReplaces(t *testing.T) {
	t.Parallel()
	b := setup(t, meilitest.Options{})
	ctx := testContext(t)
	idx := b.client.Index("rows")
	pk := &meilisearch.DocumentOptions{PrimaryKey: ptr("id")}

	b.succeeded(t)(idx.AddDocuments(ctx, []map[string]any{{"id": "a", "x": 1, "y": 2}}, pk))
	b.succeeded(t)(idx.AddDocuments(ctx, []map[string]any{{"id": "a", "w": 5}}, pk))
	doc, _ := b.srv.Document("rows", "a")
	require.Equal(t, map[string]any{"id": "a", "w": float64(5)}, doc, "POST replaces the document")
}

func TestSameDocumentWritesApplyInFIFOOrder(t *testing.T) {
	t.Parallel()
	b := setup(t, meilitest.Options{})
	ctx := testContext(t)
	pk := &meilisearch.DocumentOptions{PrimaryKey: ptr("id")}
	b.srv.Pause()
	first, err := b.client.Index("rows").AddDocuments(ctx, []map[string]any{{"id": "a", "v": 1}}, pk)
	require.NoError(t, err)
	second, err := b.client.Index("rows").AddDocuments(ctx, []map[string]any{{"id": "a", "v": 2}}, pk)
	require.NoError(t, err)
	task, err := b.client.GetTask(ctx, second.TaskUID)
	require.NoError(t, err)
	require.Equal(t, meilisearch.TaskStatusEnqueued, task.Status)

	b.srv.Resume()
	t1 := b.succeeded(t)(first, nil)
	t2 := b.succeeded(t)(second, nil)
	require.True(t, t2.StartedAt.After(t1.FinishedAt) || t2.StartedAt.Equal(t1.FinishedAt))
	doc, _ := b.srv.Document("rows", "a")
	require.Equal(t, float64(2), doc["v"], "the write enqueued last wins")
}

func TestDeleteUnknownOrInvalidIDSucceedsWithZero(t *testing.T) {
	t.Parallel()
	b := setup(t, meilitest.Options{})
	ctx := testContext(t)
	idx := b.client.Index("rows")
	b.succeeded(t)(idx.AddDocuments(ctx, []map[string]any{{"id": "a"}, {"id": "b"}}, &meilisearch.DocumentOptions{PrimaryKey: ptr("id")}))

	task := b.succeeded(t)(idx.DeleteDocuments(ctx, []string{"nope", "a.b", ""}, nil))
	require.Equal(t, int64(3), task.Details.ProvidedIds)
	require.Zero(t, task.Details.DeletedDocuments)
	require.Equal(t, meilisearch.TaskTypeDocumentDeletion, task.Type)

	task = b.succeeded(t)(idx.DeleteDocuments(ctx, []string{"a", "nope"}, nil))
	require.Equal(t, int64(1), task.Details.DeletedDocuments)
	task = b.succeeded(t)(idx.DeleteDocuments(ctx, []string{"b"}, nil))
	require.Equal(t, int64(1), task.Details.DeletedDocuments)
	require.Zero(t, b.srv.DocumentCount("rows"))

	// Deleting from a missing index fails the task, not the request.
	b.failed(t, meilisearch.APIErrCodeIndexNotFound)(b.client.Index("missing").DeleteDocuments(ctx, []string{"a"}, nil))
}

func TestDeleteIndex(t *testing.T) {
	t.Parallel()
	b := setup(t, meilitest.Options{})
	ctx := testContext(t)
	idx := b.client.Index("rows")
	b.succeeded(t)(idx.AddDocuments(ctx, []map[string]any{{"id": 3}}, nil))
	task := b.succeeded(t)(b.client.DeleteIndex(ctx, "rows"))
	require.Equal(t, meilisearch.TaskTypeIndexDeletion, task.Type)
	require.Equal(t, int64(1), task.Details.DeletedDocuments)
	_, ok := b.srv.Index("rows")
	require.False(t, ok)
	b.failed(t, meilisearch.APIErrCodeIndexNotFound)(b.client.DeleteIndex(ctx, "rows"))
}

func TestPayloadValidation(t *testing.T) {
	t.Parallel()
	b := setup(t, meilitest.Options{})
	url := b.srv.URL + "/indexes/rows/documents"
	json := map[string]string{"Content-Type": "application/json"}

	requireErrorBody(t, do(t, http.MethodPost, url, []byte(`[{"id": 1}, {id: 2}]`), json), http.StatusBadRequest, "malformed_payload", "invalid_request")
	requireErrorBody(t, do(t, http.MethodPost, url, []byte(`"kefir"`), json), http.StatusBadRequest, "malformed_payload", "invalid_request")
	requireErrorBody(t, do(t, http.MethodPost, url, []byte(`[1]`), json), http.StatusBadRequest, "malformed_payload", "invalid_request")
	requireErrorBody(t, do(t, http.MethodPost, url, nil, json), http.StatusBadRequest, "missing_payload", "invalid_request")
	requireErrorBody(t, do(t, http.MethodPost, url, []byte(`[]`), map[string]string{"Content-Type": ""}), http.StatusUnsupportedMediaType, "missing_content_type", "invalid_request")
	requireErrorBody(t, do(t, http.MethodPost, url, []byte(`[]`), map[string]string{"Content-Type": "text/plain"}), http.StatusUnsupportedMediaType, "invalid_content_type", "invalid_request")
	requireErrorBody(t, do(t, http.MethodPost, b.srv.URL+"/indexes/a.b/documents", []byte(`[]`), json), http.StatusBadRequest, "invalid_index_uid", "invalid_request")

	// A single object is accepted. NDJSON and CSV, which the sink never sends, are not
	// implemented: refused like any other content type.
	require.Equal(t, http.StatusAccepted, do(t, http.MethodPost, url, []byte(`{"id": 1}`), json).status)
	requireErrorBody(t, do(t, http.MethodPost, url, []byte("{\"id\": 2}\n"), map[string]string{"Content-Type": "application/x-ndjson"}), http.StatusUnsupportedMediaType, "invalid_content_type", "invalid_request")
	require.NoError(t, b.srv.WaitIdle(testContext(t)))
	require.Equal(t, 1, b.srv.DocumentCount("rows"))
}

func TestPayloadTooLarge(t *testing.T) {
	t.Parallel()
	b := setup(t, meilitest.Options{PayloadLimit: 1000})
	big := []map[string]any{{"id": "a", "blob": strings.Repeat("x", 2000)}}
	_, err := b.client.Index("rows").AddDocuments(testContext(t), big, nil)
	me := apiError(t, err, http.StatusRequestEntityTooLarge, meilisearch.APIErrCodePayloadTooLarge)
	require.Equal(t, "The provided payload reached the size limit. The maximum accepted payload size is 1000 B.", me.APIError.Message)
	require.Empty(t, b.srv.Tasks())

	// The sink never compresses, so the double decodes no Content-Encoding: it refuses one
	// as Meilisearch refuses an encoding it does not support.
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	_, _ = zw.Write([]byte(`[{"id":"b"}]`))
	require.NoError(t, zw.Close())
	r := do(t, http.MethodPost, b.srv.URL+"/indexes/rows/documents", zb.Bytes(), map[string]string{"Content-Type": "application/json", "Content-Encoding": "gzip"})
	requireErrorBody(t, r, http.StatusBadRequest, "bad_request", "invalid_request")

	small := setup(t, meilitest.Options{PayloadLimit: 10 << 20})
	r = do(t, http.MethodPost, small.srv.URL+"/indexes/rows/documents", []byte(strings.Repeat(" ", 11<<20)), map[string]string{"Content-Type": "application/json"})
	requireErrorBody(t, r, http.StatusRequestEntityTooLarge, "payload_too_large", "invalid_request")
	require.Contains(t, r.json(t)["message"], "10 MiB")
}
