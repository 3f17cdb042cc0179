package meilitest_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/meilisearch/meilisearch-go"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/internal/meilitest"
)

func TestPollManyTasksByUIDs(t *testing.T) {
	t.Parallel()
	b := setup(t, meilitest.Options{})
	ctx := testContext(t)
	b.srv.Pause()
	var uids []int64
	for i := range 5 {
		info, err := b.client.Index("rows").AddDocuments(ctx, []map[string]any{{"id": i}}, nil)
		require.NoError(t, err)
		uids = append(uids, info.TaskUID)
	}
	res, err := b.client.GetTasks(ctx, &meilisearch.TasksQuery{UIDS: uids[1:4]})
	require.NoError(t, err)
	require.Equal(t, int64(3), res.Total)
	require.Len(t, res.Results, 3)
	require.Equal(t, uids[3], res.Results[0].UID, "newest first")
	for _, task := range res.Results {
		require.Equal(t, meilisearch.TaskStatusEnqueued, task.Status)
	}

	b.srv.Resume()
	require.NoError(t, b.srv.WaitIdle(ctx))
	res, err = b.client.GetTasks(ctx, &meilisearch.TasksQuery{UIDS: uids, Statuses: []meilisearch.TaskStatus{meilisearch.TaskStatusSucceeded}, Limit: 2})
	require.NoError(t, err)
	require.Equal(t, int64(5), res.Total)
	require.Len(t, res.Results, 2)
	require.Equal(t, uids[4], res.From)
	require.Equal(t, uids[2], res.Next)

	res, err = b.client.GetTasks(ctx, &meilisearch.TasksQuery{From: res.Next, Limit: 10})
	require.NoError(t, err)
	require.Len(t, res.Results, 3)
	require.Zero(t, res.Next, "next is null on the last page")

	r := do(t, http.MethodGet, b.srv.URL+"/tasks?uids=0,1&types=documentAdditionOrUpdate&indexUids=rows&reverse=true", nil, nil)
	require.Equal(t, http.StatusOK, r.status)
	m := r.json(t)
	require.Equal(t, float64(2), m["total"])
	require.Equal(t, float64(0), m["results"].([]any)[0].(map[string]any)["uid"])
	require.Nil(t, m["next"])

	requireErrorBody(t, do(t, http.MethodGet, b.srv.URL+"/tasks?statuses=done", nil, nil), http.StatusBadRequest, "invalid_task_statuses", "invalid_request")
	requireErrorBody(t, do(t, http.MethodGet, b.srv.URL+"/tasks?uids=x", nil, nil), http.StatusBadRequest, "invalid_task_uids", "invalid_request")
	requireErrorBody(t, do(t, http.MethodGet, b.srv.URL+"/tasks?bogus=1", nil, nil), http.StatusBadRequest, "bad_request", "invalid_request")
}

func TestTaskJSONShape(t *testing.T) {
	t.Parallel()
	b := setup(t, meilitest.Options{})
	b.srv.Pause()
	info, err := b.client.Index("rows").AddDocuments(testContext(t), []map[string]any{{"id": 1}}, nil)
	require.NoError(t, err)
	r := do(t, http.MethodGet, b.srv.URL+"/tasks/0", nil, nil)
	require.Equal(t, http.StatusOK, r.status)
	m := r.json(t)
	for _, k := range []string{"uid", "batchUid", "indexUid", "status", "type", "canceledBy", "details", "error", "duration", "enqueuedAt", "startedAt", "finishedAt"} {
		require.Contains(t, m, k)
	}
	require.Nil(t, m["startedAt"])
	require.Nil(t, m["duration"])
	require.Equal(t, map[string]any{"receivedDocuments": float64(1), "indexedDocuments": nil}, m["details"])

	task, ok := b.srv.Step()
	require.True(t, ok)
	require.Equal(t, info.TaskUID, task.UID)
	require.Equal(t, meilitest.TaskSucceeded, task.Status)
	require.Equal(t, int64(1), task.Details["indexedDocuments"])
	m = do(t, http.MethodGet, b.srv.URL+"/tasks/0", nil, nil).json(t)
	require.Equal(t, "succeeded", m["status"])
	require.Nil(t, m["error"])
	require.NotNil(t, m["batchUid"])
	require.Regexp(t, `^PT[0-9.]+S$`, m["duration"])
}

func TestPauseAndStep(t *testing.T) {
	t.Parallel()
	b := setup(t, meilitest.Options{})
	ctx := testContext(t)
	b.srv.Pause()
	first, err := b.client.Index("rows").AddDocuments(ctx, []map[string]any{{"id": 1}}, nil)
	require.NoError(t, err)
	second, err := b.client.Index("rows").AddDocuments(ctx, []map[string]any{{"id": 2}}, nil)
	require.NoError(t, err)

	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, b.srv.WaitIdle(short), context.DeadlineExceeded, "nothing runs while paused")

	task, ok := b.srv.Step()
	require.True(t, ok)
	require.Equal(t, first.TaskUID, task.UID, "FIFO")
	got, err := b.client.GetTask(ctx, second.TaskUID)
	require.NoError(t, err)
	require.Equal(t, meilisearch.TaskStatusEnqueued, got.Status)
	require.Equal(t, 1, b.srv.DocumentCount("rows"))

	task, ok = b.srv.Step()
	require.True(t, ok)
	require.Equal(t, second.TaskUID, task.UID)
	_, ok = b.srv.Step()
	require.False(t, ok, "queue is empty")
	require.NoError(t, b.srv.WaitIdle(ctx))
}

func TestTaskDelayShowsProcessing(t *testing.T) {
	t.Parallel()
	b := setup(t, meilitest.Options{TaskDelay: 200 * time.Millisecond})
	ctx := testContext(t)
	info, err := b.client.Index("rows").AddDocuments(ctx, []map[string]any{{"id": 1}}, nil)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		task, err := b.client.GetTask(ctx, info.TaskUID)
		return err == nil && task.Status == meilisearch.TaskStatusProcessing
	}, 5*time.Second, time.Millisecond)
	task := b.succeeded(t)(info, nil)
	require.GreaterOrEqual(t, task.FinishedAt.Sub(task.StartedAt), 200*time.Millisecond)
}

func TestInjectedTaskFailures(t *testing.T) {
	t.Parallel()
	b := setup(t, meilitest.Options{})
	ctx := testContext(t)
	idx := b.client.Index("rows")

	b.srv.FailNextTask("internal", "disk on fire")
	info, err := idx.AddDocuments(ctx, []map[string]any{{"id": 1}}, nil)
	task := b.wait(t, info, err)
	require.Equal(t, meilisearch.TaskStatusFailed, task.Status)
	require.Equal(t, meilisearch.APIErrorDetails{Message: "disk on fire", Code: "internal", Type: "internal", Link: "https://docs.meilisearch.com/errors#internal"}, task.Error)
	require.Zero(t, b.srv.DocumentCount("rows"), "a failed task has no effect")
	b.succeeded(t)(idx.AddDocuments(ctx, []map[string]any{{"id": 1}}, nil))

	stop := b.srv.FailTasksMatching(func(task meilitest.Task) bool {
		return task.Type == meilitest.TaskDocumentDeletion
	}, "io_error")
	info, err = idx.DeleteDocuments(ctx, []string{"1"}, nil)
	task = b.wait(t, info, err)
	require.Equal(t, meilisearch.TaskStatusFailed, task.Status)
	require.Equal(t, meilisearch.APIErrCode("io_error"), task.Error.Code)
	require.Equal(t, "system", task.Error.Type)
	b.succeeded(t)(idx.AddDocuments(ctx, []map[string]any{{"id": 2}}, nil))
	stop()
	b.succeeded(t)(idx.DeleteDocuments(ctx, []string{"1"}, nil))

	c := b.srv.Counters()
	require.Equal(t, int64(2), c.TasksByStatus[meilitest.TaskFailed])
	require.Equal(t, int64(3), c.TasksByStatus[meilitest.TaskSucceeded])
}

func TestCountersMeasureWrites(t *testing.T) {
	t.Parallel()
	b := setup(t, meilitest.Options{})
	ctx := testContext(t)
	idx := b.client.Index("rows")
	b.succeeded(t)(idx.AddDocuments(ctx, []map[string]any{{"id": 1}, {"id": 2}, {"id": 1}}, nil))
	b.failed(t, meilisearch.APIErrCodeInvalidDocumentID)(idx.AddDocuments(ctx, []map[string]any{{"id": "a.b"}}, nil))
	b.succeeded(t)(idx.DeleteDocuments(ctx, []string{"1", "9"}, nil))
	c := b.srv.Counters()
	require.Equal(t, int64(4), c.DocumentsReceived)
	require.Equal(t, int64(3), c.DocumentsWritten, "every document of a succeeded addition counts, duplicates included")
	require.Equal(t, int64(1), c.DocumentsDeleted)
	require.Equal(t, int64(2), c.TasksByType[meilitest.TaskDocumentAdditionOrUpdate])
	require.Equal(t, int64(1), c.TasksByType[meilitest.TaskDocumentDeletion])
	require.Positive(t, c.Requests)
	b.srv.ResetCounters()
	require.Zero(t, b.srv.Counters().Requests)
}

func TestCancelAndDeleteTasks(t *testing.T) {
	t.Parallel()
	b := setup(t, meilitest.Options{})
	ctx := testContext(t)
	b.srv.Pause()
	info, err := b.client.Index("rows").AddDocuments(ctx, []map[string]any{{"id": 1}}, nil)
	require.NoError(t, err)
	cancelInfo, err := b.client.CancelTasks(ctx, &meilisearch.CancelTasksQuery{UIDS: []int64{info.TaskUID}})
	require.NoError(t, err)
	require.Equal(t, meilisearch.TaskTypeTaskCancelation, cancelInfo.Type)
	b.srv.Resume()

	cancelTask := b.succeeded(t)(cancelInfo, nil)
	require.Equal(t, int64(1), cancelTask.Details.CanceledTasks)
	task, err := b.client.GetTask(ctx, info.TaskUID)
	require.NoError(t, err)
	require.Equal(t, meilisearch.TaskStatusCanceled, task.Status)
	require.Equal(t, cancelInfo.TaskUID, task.CanceledBy)
	require.Zero(t, b.srv.DocumentCount("rows"))

	_, err = b.client.CancelTasks(ctx, nil)
	apiError(t, err, http.StatusBadRequest, meilisearch.APIErrCodeMissingTaskFilters)

	delInfo, err := b.client.DeleteTasks(ctx, &meilisearch.DeleteTasksQuery{UIDS: []int64{info.TaskUID}})
	require.NoError(t, err)
	b.succeeded(t)(delInfo, nil)
	_, err = b.client.GetTask(ctx, info.TaskUID)
	apiError(t, err, http.StatusNotFound, meilisearch.APIErrCodeTaskNotFound)
}
