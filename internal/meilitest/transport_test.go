package meilitest_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/meilisearch/meilisearch-go"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/internal/meilitest"
)

func TestHealthAndVersion(t *testing.T) {
	t.Parallel()
	b := setup(t, meilitest.Options{})
	ctx := testContext(t)
	h, err := b.client.Health(ctx)
	require.NoError(t, err)
	require.Equal(t, "available", h.Status)
	require.True(t, b.client.IsHealthy())
	v, err := b.client.Version(ctx)
	require.NoError(t, err)
	require.Equal(t, meilitest.DefaultVersion, v.PkgVersion)

	// /health needs no key.
	r := do(t, http.MethodGet, b.srv.URL+"/health", nil, map[string]string{"Authorization": ""})
	require.Equal(t, http.StatusOK, r.status)
	require.JSONEq(t, `{"status":"available"}`, string(r.body))
}

func TestMasterKey(t *testing.T) {
	t.Parallel()
	b := setup(t, meilitest.Options{})
	ctx := testContext(t)

	requireErrorBody(t, do(t, http.MethodGet, b.srv.URL+"/indexes", nil, map[string]string{"Authorization": ""}), http.StatusUnauthorized, "missing_authorization_header", "auth")
	requireErrorBody(t, do(t, http.MethodGet, b.srv.URL+"/indexes", nil, map[string]string{"Authorization": "Basic abc"}), http.StatusUnauthorized, "missing_authorization_header", "auth")
	requireErrorBody(t, do(t, http.MethodGet, b.srv.URL+"/indexes", nil, map[string]string{"Authorization": "Bearer wrong"}), http.StatusForbidden, "invalid_api_key", "auth")

	noKey := meilisearch.New(b.srv.URL)
	_, err := noKey.ListIndexes(ctx, nil)
	apiError(t, err, http.StatusUnauthorized, meilisearch.APIErrCodeMissingAuthorizationHeader)
	wrong := meilisearch.New(b.srv.URL, meilisearch.WithAPIKey("wrong"))
	_, err = wrong.Index("rows").AddDocuments(ctx, []map[string]any{{"id": 1}}, nil)
	apiError(t, err, http.StatusForbidden, meilisearch.APIErrCodeInvalidAPIKey)
	require.Empty(t, b.srv.Tasks())

	_, err = b.client.ListIndexes(ctx, nil)
	require.NoError(t, err)

	// Without a master key any Authorization header is accepted.
	open := meilitest.New(meilitest.Options{})
	t.Cleanup(open.Close)
	_, err = meilisearch.New(open.URL, meilisearch.WithAPIKey("anything")).ListIndexes(ctx, nil)
	require.NoError(t, err)
}

func TestErrorBodyShapeAndUnknownRoutes(t *testing.T) {
	t.Parallel()
	b := setup(t, meilitest.Options{})
	r := do(t, http.MethodGet, b.srv.URL+"/indexes/missing", nil, nil)
	requireErrorBody(t, r, http.StatusNotFound, "index_not_found", "invalid_request")
	require.Equal(t, "Index `missing` not found.", r.json(t)["message"])
	requireErrorBody(t, do(t, http.MethodGet, b.srv.URL+"/tasks/99", nil, nil), http.StatusNotFound, "task_not_found", "invalid_request")
	requireErrorBody(t, do(t, http.MethodGet, b.srv.URL+"/nope", nil, nil), http.StatusNotFound, "not_found", "invalid_request")
	require.Equal(t, http.StatusMethodNotAllowed, do(t, http.MethodPatch, b.srv.URL+"/tasks", nil, nil).status)

	_, err := b.client.GetIndex(testContext(t), "missing")
	me := apiError(t, err, http.StatusNotFound, meilisearch.APIErrCodeIndexNotFound)
	require.Equal(t, meilisearch.APIError, me.ErrCode)
	require.Equal(t, "invalid_request", me.APIError.Type)
}

func TestInjectedHTTPError(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)

	// Without retries the 503 surfaces, with a proper error body.
	b := setup(t, meilitest.Options{}, meilisearch.DisableRetries())
	b.srv.InjectHTTPError(http.StatusServiceUnavailable, 1)
	_, err := b.client.Index("rows").AddDocuments(ctx, []map[string]any{{"id": 1}}, nil)
	me := apiError(t, err, http.StatusServiceUnavailable, "internal")
	require.Equal(t, "internal", me.APIError.Type)
	require.Empty(t, b.srv.Tasks(), "the request was not handled")
	b.succeeded(t)(b.client.Index("rows").AddDocuments(ctx, []map[string]any{{"id": 1}}, nil))

	// With the SDK's default retries (502/503/504, 1 s backoff) one 503 is absorbed.
	r := setup(t, meilitest.Options{})
	r.srv.InjectHTTPError(http.StatusServiceUnavailable, 1)
	start := time.Now()
	r.succeeded(t)(r.client.Index("rows").AddDocuments(ctx, []map[string]any{{"id": 1}}, nil))
	require.GreaterOrEqual(t, time.Since(start), time.Second)
	c := r.srv.Counters()
	require.Equal(t, int64(1), c.InjectedHTTPErrors)
	require.Equal(t, int64(2), c.RequestsByRoute["POST /indexes/{uid}/documents"])
	require.Equal(t, int64(1), c.TasksByType[meilitest.TaskDocumentAdditionOrUpdate])

	// Faults can target some requests only; a non-retried status is not retried.
	r.srv.InjectHTTPErrorMatching(http.StatusInternalServerError, 1, func(req *http.Request) bool {
		return strings.HasPrefix(req.URL.Path, "/tasks")
	})
	info, err := r.client.Index("rows").AddDocuments(ctx, []map[string]any{{"id": 2}}, nil)
	require.NoError(t, err)
	_, err = r.client.GetTask(ctx, info.TaskUID)
	apiError(t, err, http.StatusInternalServerError, "internal")
	r.succeeded(t)(info, nil)
}

func TestDroppedConnections(t *testing.T) {
	t.Parallel()
	b := setup(t, meilitest.Options{})
	ctx := testContext(t)
	idx := b.client.Index("rows")

	b.srv.DropConnections(1)
	_, err := idx.AddDocuments(ctx, []map[string]any{{"id": 1}}, nil)
	require.Error(t, err)
	var me *meilisearch.Error
	require.ErrorAs(t, err, &me)
	require.Equal(t, meilisearch.CommunicationError, me.ErrCode)
	require.Empty(t, b.srv.Tasks(), "a dropped request is not handled")
}

func TestUsableAsHandler(t *testing.T) {
	t.Parallel()
	srv := meilitest.NewUnstarted(meilitest.Options{})
	t.Cleanup(srv.Close)
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	client := meilisearch.New(hs.URL)
	info, err := client.Index("rows").AddDocuments(testContext(t), []map[string]any{{"id": 1}}, nil)
	require.NoError(t, err)
	task, err := client.WaitForTask(testContext(t), info.TaskUID, time.Millisecond)
	require.NoError(t, err)
	require.Equal(t, meilisearch.TaskStatusSucceeded, task.Status)
	require.Equal(t, 1, srv.DocumentCount("rows"))

	require.NoError(t, srv.Start("127.0.0.1:0"))
	require.Error(t, srv.Start("127.0.0.1:0"), "a server starts once")
	_, err = meilisearch.New(srv.URL).Health(testContext(t))
	require.NoError(t, err)
	srv.Close()
	srv.Close()
}
