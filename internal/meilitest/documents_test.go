package meilitest_test

import (
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

func TestReplaceAndUpdateDocuments(t *testing.T) {
	t.Parallel()
	b := setup(t, meilitest.Options{})
	ctx := testContext(t)
	idx := b.client.Index("rows")
	pk := &meilisearch.DocumentOptions{PrimaryKey: ptr("id")}

	b.succeeded(t)(idx.AddDocuments(ctx, []map[string]any{{"id": "a", "x": 1, "y": 2}}, pk))
	b.succeeded(t)(idx.UpdateDocuments(ctx, []map[string]any{{"id": "a", "y": 3, "z": 4}}, pk))
	raw, _ := b.srv.DocumentJSON("rows", "a")
	require.JSONEq(t, `{"id":"a","x":1,"y":3,"z":4}`, string(raw), "PUT merges top-level fields")
	require.Equal(t, `{"id":"a","x":1,"y":3,"z":4}`, string(raw), "existing fields keep their place, new ones are appended")

	b.succeeded(t)(idx.AddDocuments(ctx, []map[string]any{{"id": "a", "w": 5}}, pk))
	doc, _ := b.srv.Document("rows", "a")
	require.Equal(t, map[string]any{"id": "a", "w": float64(5)}, doc, "POST replaces the document")

	var got map[string]any
	require.NoError(t, idx.GetDocument(ctx, "a", nil, &got))
	require.Equal(t, doc, got)

	err := idx.GetDocument(ctx, "nope", nil, &got)
	apiError(t, err, http.StatusNotFound, meilisearch.APIErrCodeDocumentNotFound)
	err = b.client.Index("missing").GetDocument(ctx, "a", nil, &got)
	apiError(t, err, http.StatusNotFound, meilisearch.APIErrCodeIndexNotFound)
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
	task = b.succeeded(t)(idx.DeleteDocument(ctx, "b", nil))
	require.Equal(t, int64(1), task.Details.DeletedDocuments)
	require.Zero(t, b.srv.DocumentCount("rows"))

	// Deleting from a missing index fails the task, not the request.
	b.failed(t, meilisearch.APIErrCodeIndexNotFound)(b.client.Index("missing").DeleteDocuments(ctx, []string{"a"}, nil))
}

func TestDeleteByFilter(t *testing.T) {
	t.Parallel()
	b := setup(t, meilitest.Options{})
	ctx := testContext(t)
	idx := b.client.Index("rows")
	docs := []map[string]any{
		{"id": "a_2eb", "$id": "a.b", "status": "open", "n": 1},
		{"id": "c", "$id": "c", "status": "Closed", "n": 2},
		{"id": "d", "$id": "d", "status": "open", "n": 3},
	}
	b.succeeded(t)(idx.AddDocuments(ctx, docs, &meilisearch.DocumentOptions{PrimaryKey: ptr("id")}))

	// Not filterable yet: the request is accepted and the task fails.
	task := b.failed(t, meilisearch.APIErrCodeInvalidDocumentFilter)(idx.DeleteDocumentsByFilter(ctx, `"$id" = "a.b"`, nil))
	require.Equal(t, "Index `rows`: Attribute `$id` is not filterable. This index does not have configured filterable attributes.\n2:5 \"$id\" = \"a.b\"", task.Error.Message)
	require.Equal(t, `"\"$id\" = \"a.b\""`, task.Details.OriginalFilter)
	require.Equal(t, 3, b.srv.DocumentCount("rows"))

	b.succeeded(t)(idx.UpdateFilterableAttributes(ctx, &[]any{"$id", "status"}))
	task = b.succeeded(t)(idx.DeleteDocumentsByFilter(ctx, `"$id" = "a.b"`, nil))
	require.Equal(t, int64(1), task.Details.DeletedDocuments)
	_, ok := b.srv.Document("rows", "a_2eb")
	require.False(t, ok)

	// Facet equality is case-insensitive, as in Meilisearch.
	task = b.succeeded(t)(idx.DeleteDocumentsByFilter(ctx, `status = closed OR "$id" IN [nope]`, nil))
	require.Equal(t, int64(1), task.Details.DeletedDocuments)

	task = b.failed(t, meilisearch.APIErrCodeInvalidDocumentFilter)(idx.DeleteDocumentsByFilter(ctx, "n > 1", nil))
	require.Contains(t, task.Error.Message, "Attribute `n` is not filterable. Available filterable attributes are: `$id`, `status`.")

	// Syntax errors are refused synchronously.
	_, err := idx.DeleteDocumentsByFilter(ctx, `$id = "a.b"`, nil)
	apiError(t, err, http.StatusBadRequest, meilisearch.APIErrCodeInvalidDocumentFilter)
	_, err = idx.DeleteDocumentsByFilter(ctx, "", nil)
	me := apiError(t, err, http.StatusBadRequest, meilisearch.APIErrCodeInvalidDocumentFilter)
	require.Equal(t, "Sending an empty filter is forbidden.", me.APIError.Message)

	task = b.succeeded(t)(idx.DeleteDocumentsByFilter(ctx, []any{"status = open", []string{`"$id" = d`, `"$id" = zz`}}, nil))
	require.Equal(t, int64(1), task.Details.DeletedDocuments)
	require.Zero(t, b.srv.DocumentCount("rows"))
}

func TestDeleteAllDocumentsAndIndex(t *testing.T) {
	t.Parallel()
	b := setup(t, meilitest.Options{})
	ctx := testContext(t)
	idx := b.client.Index("rows")
	b.succeeded(t)(idx.AddDocuments(ctx, []map[string]any{{"id": 1}, {"id": 2}}, nil))
	task := b.succeeded(t)(idx.DeleteAllDocuments(ctx, nil))
	require.Equal(t, int64(2), task.Details.DeletedDocuments)
	b.succeeded(t)(idx.AddDocuments(ctx, []map[string]any{{"id": 3}}, nil))
	task = b.succeeded(t)(b.client.DeleteIndex(ctx, "rows"))
	require.Equal(t, meilisearch.TaskTypeIndexDeletion, task.Type)
	require.Equal(t, int64(1), task.Details.DeletedDocuments)
	_, ok := b.srv.Index("rows")
	require.False(t, ok)
	b.failed(t, meilisearch.APIErrCodeIndexNotFound)(b.client.DeleteIndex(ctx, "rows"))
}

func TestFetchDocuments(t *testing.T) {
	t.Parallel()
	b := setup(t, meilitest.Options{})
	ctx := testContext(t)
	idx := b.client.Index("rows")
	var docs []map[string]any
	for i := range 30 {
		docs = append(docs, map[string]any{"id": i, "even": i%2 == 0, "name": "n"})
	}
	b.succeeded(t)(idx.AddDocuments(ctx, docs, nil))
	b.succeeded(t)(idx.UpdateFilterableAttributes(ctx, &[]any{"even", "id"}))

	var res meilisearch.DocumentsResult
	require.NoError(t, idx.GetDocuments(ctx, &meilisearch.DocumentsQuery{Limit: 5, Offset: 10, Fields: []string{"id"}}, &res))
	require.Equal(t, int64(30), res.Total)
	require.Len(t, res.Results, 5)
	var first map[string]any
	require.NoError(t, res.Results[0].DecodeInto(&first))
	require.Equal(t, map[string]any{"id": float64(10)}, first, "insertion order and field projection")

	require.NoError(t, idx.GetDocuments(ctx, &meilisearch.DocumentsQuery{Filter: "even = true AND id >= 20", Limit: 100}, &res))
	require.Equal(t, int64(5), res.Total)
	require.NoError(t, idx.GetDocuments(ctx, &meilisearch.DocumentsQuery{Ids: []string{"3", "4", "999"}}, &res))
	require.Equal(t, int64(2), res.Total)

	err := idx.GetDocuments(ctx, &meilisearch.DocumentsQuery{Filter: "name = n"}, &res)
	me := apiError(t, err, http.StatusBadRequest, meilisearch.APIErrCodeInvalidDocumentFilter)
	require.Equal(t, "Attribute `name` is not filterable. Available filterable attributes are: `even`, `id`.\n1:5 name = n", me.APIError.Message)

	r := do(t, http.MethodGet, b.srv.URL+"/indexes/rows/documents?limit=2&offset=1", nil, nil)
	require.Equal(t, http.StatusOK, r.status)
	require.JSONEq(t, `{"results":[{"id":1,"even":false,"name":"n"},{"id":2,"even":true,"name":"n"}],"offset":1,"limit":2,"total":30}`, string(r.body))
}

func TestPayloadValidation(t *testing.T) {
	t.Parallel()
	b := setup(t, meilitest.Options{})
	url := b.srv.URL + "/indexes/rows/documents"
	json := map[string]string{"Content-Type": "application/json"}

	requireErrorBody(t, do(t, http.MethodPost, url, []byte(`[{"id": 1}, {id: 2}]`), json), http.StatusBadRequest, "malformed_payload", "invalid_request")
	requireErrorBody(t, do(t, http.MethodPost, url, []byte(`"kefir"`), json), http.StatusBadRequest, "malformed_payload", "invalid_request")
	requireErrorBody(t, do(t, http.MethodPost, url, []byte(`[1]`), json), http.StatusBadRequest, "malformed_payload", "invalid_request")
	requireErrorBody(t, do(t, http.MethodPut, url, nil, json), http.StatusBadRequest, "missing_payload", "invalid_request")
	requireErrorBody(t, do(t, http.MethodPost, url, []byte(`[]`), map[string]string{"Content-Type": ""}), http.StatusUnsupportedMediaType, "missing_content_type", "invalid_request")
	requireErrorBody(t, do(t, http.MethodPost, url, []byte(`[]`), map[string]string{"Content-Type": "text/plain"}), http.StatusUnsupportedMediaType, "invalid_content_type", "invalid_request")
	requireErrorBody(t, do(t, http.MethodPost, b.srv.URL+"/indexes/a.b/documents", []byte(`[]`), json), http.StatusBadRequest, "invalid_index_uid", "invalid_request")

	// A single object is accepted, and so are NDJSON and CSV.
	require.Equal(t, http.StatusAccepted, do(t, http.MethodPost, url, []byte(`{"id": 1}`), json).status)
	require.Equal(t, http.StatusAccepted, do(t, http.MethodPost, url, []byte("{\"id\": 2}\n{\"id\": 3}\n"), map[string]string{"Content-Type": "application/x-ndjson"}).status)
	require.Equal(t, http.StatusAccepted, do(t, http.MethodPost, url, []byte("id:number,name\n4,four\n"), map[string]string{"Content-Type": "text/csv"}).status)
	require.NoError(t, b.srv.WaitIdle(testContext(t)))
	require.Equal(t, 4, b.srv.DocumentCount("rows"))
	doc, _ := b.srv.Document("rows", "4")
	require.Equal(t, map[string]any{"id": float64(4), "name": "four"}, doc)
}

func TestPayloadTooLarge(t *testing.T) {
	t.Parallel()
	b := setup(t, meilitest.Options{PayloadLimit: 1000})
	big := []map[string]any{{"id": "a", "blob": strings.Repeat("x", 2000)}}
	_, err := b.client.Index("rows").AddDocuments(testContext(t), big, nil)
	me := apiError(t, err, http.StatusRequestEntityTooLarge, meilisearch.APIErrCodePayloadTooLarge)
	require.Equal(t, "The provided payload reached the size limit. The maximum accepted payload size is 1000 B.", me.APIError.Message)
	require.Empty(t, b.srv.Tasks())

	// The limit applies after decompression: this compresses far below 1000 bytes.
	gz := setup(t, meilitest.Options{PayloadLimit: 1000}, meilisearch.WithContentEncoding(meilisearch.GzipEncoding, meilisearch.DefaultCompression))
	_, err = gz.client.Index("rows").AddDocuments(testContext(t), big, nil)
	apiError(t, err, http.StatusRequestEntityTooLarge, meilisearch.APIErrCodePayloadTooLarge)

	small := setup(t, meilitest.Options{PayloadLimit: 10 << 20})
	r := do(t, http.MethodPost, small.srv.URL+"/indexes/rows/documents", []byte(strings.Repeat(" ", 11<<20)), map[string]string{"Content-Type": "application/json"})
	requireErrorBody(t, r, http.StatusRequestEntityTooLarge, "payload_too_large", "invalid_request")
	require.Contains(t, r.json(t)["message"], "10 MiB")
}
