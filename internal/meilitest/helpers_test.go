package meilitest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/meilisearch/meilisearch-go"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/internal/meilitest"
)

const testKey = "test-master-key"

type testBundle struct {
	srv    *meilitest.Server
	client meilisearch.ServiceManager
}

// setup starts a double with a master key and a meilisearch-go client using it.
func setup(t *testing.T, opts meilitest.Options, clientOpts ...meilisearch.Option) *testBundle {
	t.Helper()
	if opts.MasterKey == "" {
		opts.MasterKey = testKey
	}
	srv := meilitest.New(opts)
	t.Cleanup(srv.Close)
	client := meilisearch.New(srv.URL, append([]meilisearch.Option{meilisearch.WithAPIKey(opts.MasterKey)}, clientOpts...)...)
	t.Cleanup(client.Close)
	return &testBundle{srv: srv, client: client}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// wait waits for a task to finish. WaitForTask returns err == nil for failed tasks, so callers
// check the status.
func (b *testBundle) wait(t *testing.T, info *meilisearch.TaskInfo, err error) *meilisearch.Task {
	t.Helper()
	require.NoError(t, err)
	task, err := b.client.WaitForTask(testContext(t), info.TaskUID, 2*time.Millisecond)
	require.NoError(t, err)
	return task
}

// succeeded returns a function taking an SDK write's results, waiting for the task and
// requiring it succeeded: b.succeeded(t)(idx.AddDocuments(...)).
func (b *testBundle) succeeded(t *testing.T) func(*meilisearch.TaskInfo, error) *meilisearch.Task {
	return func(info *meilisearch.TaskInfo, err error) *meilisearch.Task {
		t.Helper()
		task := b.wait(t, info, err)
		require.Equal(t, meilisearch.TaskStatusSucceeded, task.Status, "task error: %+v", task.Error)
		return task
	}
}

// failed is succeeded for a task that must fail with code.
func (b *testBundle) failed(t *testing.T, code meilisearch.APIErrCode) func(*meilisearch.TaskInfo, error) *meilisearch.Task {
	return func(info *meilisearch.TaskInfo, err error) *meilisearch.Task {
		t.Helper()
		task := b.wait(t, info, err)
		require.Equal(t, meilisearch.TaskStatusFailed, task.Status)
		require.Equal(t, code, task.Error.Code, "message: %s", task.Error.Message)
		require.Equal(t, "invalid_request", task.Error.Type)
		require.Equal(t, "https://docs.meilisearch.com/errors#"+string(code), task.Error.Link)
		require.NotEmpty(t, task.Error.Message)
		return task
	}
}

func ptr[T any](v T) *T { return &v }

// apiError asserts err is a meilisearch-go API error with status and code.
func apiError(t *testing.T, err error, status int, code meilisearch.APIErrCode) *meilisearch.Error {
	t.Helper()
	require.Error(t, err)
	var me *meilisearch.Error
	require.ErrorAs(t, err, &me)
	require.Equal(t, status, me.StatusCode, "error: %v", err)
	require.True(t, me.HasCode(code), "code %q, want %q (%s)", me.APIError.Code, code, me.APIError.Message)
	return me
}

type rawResponse struct {
	status int
	header http.Header
	body   []byte
}

func (r rawResponse) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.body, &m), "body: %s", r.body)
	return m
}

// do sends a raw request, bypassing the SDK, to check the wire format.
func do(t *testing.T, method, url string, body []byte, header map[string]string) rawResponse {
	t.Helper()
	req, err := http.NewRequestWithContext(testContext(t), method, url, bytes.NewReader(body))
	require.NoError(t, err)
	if _, ok := header["Authorization"]; !ok {
		req.Header.Set("Authorization", "Bearer "+testKey)
	}
	for k, v := range header {
		if v == "" {
			req.Header.Del(k)
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return rawResponse{status: resp.StatusCode, header: resp.Header, body: b}
}

// requireErrorBody checks Meilisearch's error body shape: exactly message, code, type, link.
func requireErrorBody(t *testing.T, r rawResponse, status int, code, typ string) {
	t.Helper()
	require.Equal(t, status, r.status, "body: %s", r.body)
	m := r.json(t)
	require.Len(t, m, 4, "body: %s", r.body)
	require.Equal(t, code, m["code"])
	require.Equal(t, typ, m["type"])
	require.Equal(t, "https://docs.meilisearch.com/errors#"+code, m["link"])
	require.NotEmpty(t, m["message"])
}
