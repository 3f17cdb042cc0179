package backfill_test

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/connector/appwrite"
	"github.com/appwrite-sync/appwrite-sync/connector/backfill"
	"github.com/appwrite-sync/appwrite-sync/connector/ledger"
	"github.com/appwrite-sync/appwrite-sync/internal/appwritetest"
)

// Before every page the row the keyset stands on is deleted from the source: with
// cursorAfter Appwrite would answer 400 general_cursor_not_found; the keyset moves on.
func TestDeletingTheCursorRowMidScanDoesNotBreakTheJob(t *testing.T) {
	t.Parallel()
	var b *bundle
	var deleted sync.Map
	var off atomic.Bool
	b = setup(t, setupOpts{proxy: func(r *http.Request, _ int64) {
		if off.Load() {
			return
		}
		after := afterSequence(appwritetest.Request{Queries: r.URL.Query()["queries[]"]})
		if after == "" {
			return
		}
		id := "seed-" + after
		if b.api.Delete(posts, id) {
			deleted.Store(id, true)
		}
	}})
	b.api.Seed(posts, 1000, 200)

	j := b.wait(b.start("main/posts", "full"), 30*time.Second)
	require.Equal(t, backfill.StateSucceeded, j.State, j.Error)
	n := 0
	deleted.Range(func(any, any) bool { n++; return true })
	require.Equal(t, 10, n, "the cursor row of pages 2 to 11 (the last one empty) was deleted")
	require.EqualValues(t, 1000, j.RowsRead, "each row was read once, before it was deleted")
	for _, r := range b.api.Requests() {
		require.Less(t, r.Status, 400, "no request failed: %+v", r)
	}
	require.Len(t, b.live(posts), 1000)

	// The next full reconcile turns the 10 into deletes.
	off.Store(true)
	j = b.wait(b.start("main/posts", "full"), 30*time.Second)
	require.Equal(t, backfill.StateSucceeded, j.State, j.Error)
	require.EqualValues(t, 10, j.RowsDeleted)
	require.Equal(t, b.source(posts), b.live(posts))
}

// A process that stops hands its job back; the next one resumes after the checkpoint instead
// of starting over, and ends with the same rows.
func TestStoppedJobResumesFromItsCheckpoint(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.api.Seed(posts, 3000, 200)
	b.api.SetLatency(20 * time.Millisecond)

	id := b.start("main/posts", "full")
	require.Eventually(t, func() bool { return b.job(id).RowsRead >= 1000 }, 30*time.Second, 10*time.Millisecond)
	b.stop()
	j := b.job(id)
	require.Equal(t, backfill.StateQueued, j.State, "a stopping process hands its job back")
	require.NotEmpty(t, j.Checkpoint)
	checkpoint, err := strconv.Atoi(j.Checkpoint)
	require.NoError(t, err)
	require.EqualValues(t, checkpoint, j.RowsRead, "the checkpoint is the last row recorded")
	before := len(b.listRequests(posts))

	// A new process (a new owner) picks it up.
	b.m = mustManager(t, b, "second-process")
	b.run()
	b.api.SetLatency(0)
	j = b.wait(id, 30*time.Second)
	require.Equal(t, backfill.StateSucceeded, j.State, j.Error)
	require.EqualValues(t, 3000, j.RowsRead)
	require.EqualValues(t, 3000, j.RowsChanged, "no row was recorded twice")
	resumed := b.listRequests(posts)[before]
	require.Equal(t, strconv.Itoa(checkpoint), afterSequence(resumed), "the first page after the restart starts after the checkpoint")
	require.Len(t, b.live(posts), 3000)
}

func mustManager(t *testing.T, b *bundle, owner string) *backfill.Manager {
	m, err := backfill.New(b.pool, backfill.Options{Client: b.client, Recorder: b.rec, Mapping: b.mapping, Owner: owner, Skew: backfill.SkewDefault,
		Lease: 2 * time.Second, PollInterval: 50 * time.Millisecond, Log: testLog()})
	require.NoError(t, err)
	return m
}

// A job whose process died (its lease is not renewed) is taken over once the lease lapses.
func TestJobOfADeadProcessIsTakenOverAfterItsLease(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{noRun: true})
	b.api.Seed(posts, 500, 200)
	id := b.start("main/posts", "full")
	ctx := context.Background()
	// What a SIGKILLed process leaves: running, its lease a second from lapsing, 200 rows in.
	_, err := b.pool.Exec(ctx, `UPDATE appwrite_sync.backfill_jobs SET state = 'running', lease_owner = 'dead-process',
        available_at = now() + interval '1 second', started_at = now(), scan_started_at = now(), run_started_at = now(),
        checkpoint = '200', rows_read = 200 WHERE id = $1`, id)
	require.NoError(t, err)
	b.run()
	time.Sleep(300 * time.Millisecond)
	j := b.job(id)
	require.Equal(t, "dead-process", j.Owner, "the lease still holds")
	j = b.wait(id, 30*time.Second)
	require.Equal(t, backfill.StateSucceeded, j.State, j.Error)
	require.EqualValues(t, 500, j.RowsRead)
	require.EqualValues(t, 300, j.RowsChanged, "only rows after the checkpoint were read")
	require.Equal(t, "200", afterSequence(b.listRequests(posts)[0]))
}

func TestCancelStopsTheScanPromptly(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.api.Seed(posts, 20000, 200)
	b.api.SetLatency(30 * time.Millisecond)
	id := b.start("main/posts", "full")
	require.Eventually(t, func() bool { return b.job(id).RowsRead > 0 }, 10*time.Second, 5*time.Millisecond)

	code, out := b.call(http.MethodDelete, "/admin/backfill/"+id, "")
	require.Equal(t, http.StatusOK, code, out)
	j := b.job(id)
	require.Equal(t, backfill.StateCanceled, j.State)
	require.Equal(t, "canceled by request", j.Error)
	time.Sleep(100 * time.Millisecond)
	n := len(b.listRequests(posts))
	time.Sleep(300 * time.Millisecond)
	require.Equal(t, n, len(b.listRequests(posts)), "the scan stopped")
	require.Less(t, b.job(id).RowsRead, int64(20000))

	code, _ = b.call(http.MethodDelete, "/admin/backfill/"+id, "")
	require.Equal(t, http.StatusNotFound, code, "an ended job cannot be canceled")
	// The table is free again.
	b.api.SetLatency(0)
	require.Equal(t, backfill.StateSucceeded, b.wait(b.start("main/posts", "full"), 60*time.Second).State)
}

// A cancel through another replica reaches the owner at its next heartbeat.
func TestCancelThroughAnotherProcess(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.api.Seed(posts, 20000, 200)
	b.api.SetLatency(30 * time.Millisecond)
	id := b.start("main/posts", "full")
	require.Eventually(t, func() bool { return b.job(id).RowsRead > 0 }, 10*time.Second, 5*time.Millisecond)

	other := mustManager(t, b, "other-replica")
	ok, err := other.Cancel(context.Background(), id)
	require.NoError(t, err)
	require.True(t, ok)
	time.Sleep(300 * time.Millisecond) // the owner's heartbeat runs every 50ms here
	n := len(b.listRequests(posts))
	time.Sleep(300 * time.Millisecond)
	require.Equal(t, n, len(b.listRequests(posts)), "the owner stopped scanning")
	require.Equal(t, backfill.StateCanceled, b.job(id).State)
}

func TestOneJobPerTable(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{noRun: true})
	ctx := context.Background()
	var wg sync.WaitGroup
	ids := make([]string, 8)
	errs := make([]error, 8)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids[i], errs[i] = b.m.Enqueue(ctx, posts, backfill.ModeFull, backfill.TriggerAdmin)
		}()
	}
	wg.Wait()
	started := ""
	for i := range ids {
		var ae *backfill.ActiveError
		if errs[i] == nil {
			require.Empty(t, started, "two jobs started for one table")
			started = ids[i]
		} else {
			require.True(t, errors.As(errs[i], &ae), errs[i])
		}
	}
	require.NotEmpty(t, started)

	code, out := b.call(http.MethodPost, "/admin/backfill", `{"table":"main/posts","mode":"incremental"}`)
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, out["error"], "table main/posts already has a full job "+started+" (queued)")

	// Another table is independent.
	_, err := b.m.Enqueue(ctx, connector.TableKey{Database: "other", Table: "any"}, backfill.ModeFull, backfill.TriggerAdmin)
	require.NoError(t, err)
}

func TestStartRejectsBadRequests(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{noRun: true})
	for _, c := range []struct{ body, want string }{
		{`{"table":"main/nope","mode":"full"}`, "table main/nope is not mapped (mapped: main/posts, main/ghost, */any): add it under tables: in the config first"},
		{`{"table":"*/any","mode":"full"}`, `table */any: the mapping entry applies to every database, so name one, e.g. "main/any"`},
		{`{"table":"posts","mode":"full"}`, `table "posts": want "database/table", e.g. "main/posts"`},
		{`{"table":"main/posts","mode":"everything"}`, `mode "everything": use "full" or "incremental"`},
		{`{"table":"main/posts","mode":"incremental","allow_mass_delete":true}`, `allow_mass_delete applies to full jobs only (an incremental job records no deletes)`},
	} {
		code, out := b.call(http.MethodPost, "/admin/backfill", c.body)
		require.Equal(t, http.StatusBadRequest, code, c.body)
		require.Equal(t, c.want, out["error"], c.body)
	}
	// A concrete database under a "*" entry is fine.
	code, out := b.call(http.MethodPost, "/admin/backfill", `{"table":"shop/any","mode":"full"}`)
	require.Equal(t, http.StatusAccepted, code, out)
	code, _ = b.call(http.MethodGet, "/admin/backfill/bf-nope", "")
	require.Equal(t, http.StatusNotFound, code)
}

// Each failure ends in GET /admin/backfill/{id} with a reason that says what to fix.
func TestFailuresShowAClearReason(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		opts     setupOpts
		prepare  func(b *bundle)
		table    string
		want     []string
		failures int
	}{
		{name: "bad API key", opts: setupOpts{client: func(o *appwrite.Options) { o.APIKey = "standard_wrong" }},
			table: "main/posts", failures: 1, // retrying cannot fix a key
			want: []string{"appwrite: list rows main/posts: 401 user_unauthorized", "check appwrite.api_key and appwrite.project"}},
		{name: "key without scope", opts: setupOpts{api: appwritetest.Options{Scopes: []string{"databases.read"}}},
			table: "main/posts", failures: 1,
			want: []string{"401 general_unauthorized_scope", "the API key lacks scope rows.read"}},
		{name: "table missing in Appwrite", table: "main/ghost", failures: 1,
			want: []string{"404 table_not_found", "table main/ghost does not exist in project \"test-project\": check the table id"}},
		{name: "database missing in Appwrite", table: "shop/any", failures: 1,
			want: []string{"404 database_not_found", `database "shop" does not exist in project "test-project"`}},
		{name: "server error", table: "main/posts", failures: 2, // MaxAttempts 2 here
			prepare: func(b *bundle) { b.api.InjectError(http.StatusInternalServerError, "general_server_error", 1000) },
			want:    []string{"failed after 2 attempts: appwrite: list rows main/posts: 500 general_server_error: An internal server error occurred. (gave up after 4 attempts)", "check the server's health"}},
		{name: "page that never answers", table: "main/posts", failures: 2,
			opts: setupOpts{client: func(o *appwrite.Options) {
				o.RequestTimeout = 150 * time.Millisecond
				o.MaxRetries = 1
			}},
			prepare: func(b *bundle) { b.api.Hang(1000) },
			want:    []string{"failed after 2 attempts: appwrite: list rows main/posts: gave up after 2 attempts", "no complete answer within 150ms"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, c.opts)
			b.api.Seed(posts, 10, 100)
			if c.prepare != nil {
				c.prepare(b)
			}
			id := b.start(c.table, "full")
			j := b.wait(id, 30*time.Second)
			require.Equal(t, backfill.StateFailed, j.State)
			for _, w := range c.want {
				require.Contains(t, j.Error, w)
			}
			require.Equal(t, c.failures, j.Failures)
			require.NotContains(t, j.Error, appwritetest.APIKeyDefault)
			require.NotContains(t, j.Error, "standard_wrong")
			require.Eventually(t, func() bool { // counted just after the store says failed
				return counter(b.metrics.BackfillJobs.WithLabelValues("full", "failed")) == 1
			}, 5*time.Second, 5*time.Millisecond)
		})
	}
}

// A transient failure is retried by the client (and, past its budget, by the job) and the job
// succeeds; while it waits, GET shows why.
func TestTransientFailuresAreRetried(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{
		client:  func(o *appwrite.Options) { o.MaxRetries = 1 },
		manager: func(o *backfill.Options) { o.RetryBackoff = time.Second; o.MaxAttempts = 3 }})
	b.api.Seed(posts, 250, 100)
	b.api.InjectError(http.StatusServiceUnavailable, "general_server_error", 2) // the client's 2 attempts
	id := b.start("main/posts", "full")
	require.Eventually(t, func() bool {
		j := b.job(id)
		return j.State == backfill.StateQueued && j.Failures == 1
	}, 10*time.Second, 10*time.Millisecond)
	require.Contains(t, b.job(id).Error, "attempt 1 of 3 failed, retrying in 1s: appwrite: list rows main/posts: 503")
	j := b.wait(id, 30*time.Second)
	require.Equal(t, backfill.StateSucceeded, j.State, j.Error)
	require.Empty(t, j.Error)
	require.EqualValues(t, 250, j.RowsRead)
}

// outOfOrder records the page starting at $sequence 201 before it fails the page starting at
// 101, which was handed out first: with two pages recorded at once, the later page finishes
// first.
type outOfOrder struct {
	backfill.Recorder
	later      chan struct{}
	overlapped atomic.Bool
}

func (o *outOfOrder) RecordBatch(ctx context.Context, chs []connector.Change) ([]ledger.Result, error) {
	switch chs[0].Sequence {
	case "201":
		res, err := o.Recorder.RecordBatch(ctx, chs)
		close(o.later)
		return res, err
	case "101":
		select {
		case <-o.later:
			o.overlapped.Store(true)
		case <-time.After(5 * time.Second):
		}
		return nil, errors.New("state store lost mid-page")
	}
	return o.Recorder.RecordBatch(ctx, chs)
}

// The checkpoint moves in page order over pages recorded without a gap only: a later page that
// was recorded while an earlier one failed is not covered, so a resumed job reads both again.
func TestCheckpointNeverPassesAnUnrecordedPage(t *testing.T) {
	t.Parallel()
	rec := &outOfOrder{later: make(chan struct{})}
	b := setup(t, setupOpts{manager: func(o *backfill.Options) {
		rec.Recorder = o.Recorder
		o.Recorder, o.RecordAhead, o.MaxAttempts, o.ParallelPages = rec, 2, 1, 1
	}})
	b.api.Seed(posts, 1000, 100)
	id := b.start("main/posts", "full")
	j := b.wait(id, 30*time.Second)
	require.True(t, rec.overlapped.Load(), "the later page must have been recorded before the earlier one failed")
	require.Equal(t, backfill.StateFailed, j.State)
	require.Contains(t, j.Error, "state store lost mid-page")
	require.Equal(t, "100", j.Checkpoint, "only the first page was recorded without a gap")
}

// failingRecorder refuses every page with an error text the state store cannot hold as it
// is: a NUL byte, and over 4,000 bytes of two-byte characters cut at an odd offset.
type failingRecorder struct{ backfill.Recorder }

func (failingRecorder) RecordBatch(context.Context, []connector.Change) ([]ledger.Result, error) {
	return nil, errors.New("value \"a\x00b\": " + strings.Repeat("ü", 2500))
}

// A job whose error text cannot be stored as it is still ends failed, with the text cleaned:
// recording the failure must not fail and leave the job to be retaken forever.
func TestFailureWithAnyErrorTextEnds(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{manager: func(o *backfill.Options) {
		o.Recorder, o.MaxAttempts = failingRecorder{o.Recorder}, 1
	}})
	b.api.Seed(posts, 10, 100)
	id := b.start("main/posts", "full")
	j := b.wait(id, 5*time.Second)
	require.Equal(t, backfill.StateFailed, j.State)
	require.True(t, utf8.ValidString(j.Error))
	require.NotContains(t, j.Error, "\x00")
	require.Contains(t, j.Error, `value "ab": üü`)
	require.LessOrEqual(t, len(j.Error), 4000)
}

// EnqueueSince starts an incremental job at the refusal minus the skew, or at the watermark
// minus the skew when that is earlier (a successful job advances the watermark, which must not
// pass rows no job read); a table without a watermark is read whole.
func TestEnqueueSince(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.put("r0", "t", b.api.Now())
	ctx := context.Background()
	from := time.Now().UTC().Truncate(time.Millisecond)
	id, err := b.m.EnqueueSince(ctx, posts, from, backfill.TriggerRepair)
	require.NoError(t, err)
	j := b.wait(id, 30*time.Second)
	require.Equal(t, backfill.StateSucceeded, j.State, j.Error)
	require.Nil(t, j.Since, "no watermark yet: every row")
	require.Equal(t, backfill.TriggerRepair, j.Trigger)

	b.put("r1", "t", b.api.Now())
	j = b.wait(b.start("main/posts", "incremental"), 30*time.Second)
	require.Equal(t, backfill.StateSucceeded, j.State, j.Error)
	var wm time.Time
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT updated_at FROM appwrite_sync.backfill_watermarks WHERE table_key = 'main/posts'`).Scan(&wm))

	id, err = b.m.EnqueueSince(ctx, posts, wm.Add(time.Hour), backfill.TriggerRepair)
	require.NoError(t, err)
	j = b.wait(id, 30*time.Second)
	require.True(t, j.Since.Equal(wm.Add(-backfill.SkewDefault)), "the watermark is earlier: %s", j.Since)

	id, err = b.m.EnqueueSince(ctx, posts, wm.Add(-time.Hour), backfill.TriggerRepair)
	require.NoError(t, err)
	j = b.wait(id, 30*time.Second)
	require.True(t, j.Since.Equal(wm.Add(-time.Hour-backfill.SkewDefault)), "the refusal is earlier: %s", j.Since)

	_, err = b.m.EnqueueSince(ctx, connector.TableKey{Database: "main", Table: "nope"}, from, backfill.TriggerRepair)
	var nm *backfill.NotMappedError
	require.ErrorAs(t, err, &nm)
}
