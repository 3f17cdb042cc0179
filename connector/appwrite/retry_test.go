package appwrite_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector/appwrite"
	"github.com/appwrite-sync/appwrite-sync/internal/appwritetest"
)

func TestServerErrorsAreRetriedThenSucceed(t *testing.T) {
	t.Parallel()
	b := setup(t, appwritetest.Options{}, nil)
	putN(b, 3)
	b.srv.InjectError(http.StatusInternalServerError, "general_server_error", 2)
	b.srv.Inject(appwritetest.Fault{Status: http.StatusBadGateway, Body: "<html>bad gateway</html>", Count: 1})

	p, err := b.client.ListRows(ctxTimeout(t, 10*time.Second), posts, appwrite.ListQuery{})
	require.NoError(t, err)
	assert.Len(t, p.Rows, 3)
	assert.EqualValues(t, 4, b.srv.Stats().Lists)
	sleeps := b.clock.Sleeps()
	require.Len(t, sleeps, 3)
	// Exponential with ±50% jitter around 500ms, 750ms, 1125ms.
	for i, base := range []time.Duration{500, 750, 1125} {
		base *= time.Millisecond
		assert.GreaterOrEqual(t, sleeps[i], base/2, "wait %d", i)
		assert.LessOrEqual(t, sleeps[i], base*3/2+time.Millisecond, "wait %d", i)
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	t.Parallel()
	b := setup(t, appwritetest.Options{}, nil)
	putN(b, 1)
	b.srv.Inject(appwritetest.Fault{Status: http.StatusTooManyRequests, Type: "general_rate_limit_exceeded",
		Header: http.Header{"Retry-After": {"7"}}, Count: 1})
	// An HTTP date 30s after the client's (fake) clock at that moment: 7s later than now.
	date := b.clock.Now().Add(7 * time.Second).Add(30 * time.Second).Format(http.TimeFormat)
	b.srv.Inject(appwritetest.Fault{Status: http.StatusServiceUnavailable, Type: "general_server_error",
		Header: http.Header{"Retry-After": {date}}, Count: 1})

	p, err := b.client.ListRows(ctxTimeout(t, 10*time.Second), posts, appwrite.ListQuery{})
	require.NoError(t, err)
	assert.Len(t, p.Rows, 1)
	assert.Equal(t, []time.Duration{7 * time.Second, 30 * time.Second}, b.clock.Sleeps())
}

func TestRetryAfterBeyondBudgetGivesUp(t *testing.T) {
	t.Parallel()
	b := setup(t, appwritetest.Options{}, func(o *appwrite.Options) { o.MaxElapsed = time.Minute })
	putN(b, 1)
	b.srv.Inject(appwritetest.Fault{Status: http.StatusTooManyRequests, Type: "general_rate_limit_exceeded",
		Header: http.Header{"Retry-After": {"3600"}}, Count: 1})

	_, err := b.client.ListRows(ctxTimeout(t, 10*time.Second), posts, appwrite.ListQuery{})
	require.Error(t, err)
	var ae *appwrite.APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, http.StatusTooManyRequests, ae.Status)
	assert.True(t, ae.Retryable())
	assert.Contains(t, err.Error(), "asked to wait 1h0m0s")
	assert.Empty(t, b.clock.Sleeps(), "no pointless wait")
}

func TestRetriesAreBounded(t *testing.T) {
	t.Parallel()
	b := setup(t, appwritetest.Options{}, func(o *appwrite.Options) { o.MaxRetries = 3 })
	putN(b, 1)
	b.srv.InjectError(http.StatusServiceUnavailable, "general_server_error", 100)

	_, err := b.client.ListRows(ctxTimeout(t, 10*time.Second), posts, appwrite.ListQuery{})
	require.Error(t, err)
	var ae *appwrite.APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, 4, ae.Attempts)
	assert.Contains(t, err.Error(), "gave up after 4 attempts")
	assert.EqualValues(t, 4, b.srv.Stats().Lists)

	// Bounded by elapsed time as well: 2 min of backoff at most.
	b2 := setup(t, appwritetest.Options{}, func(o *appwrite.Options) { o.MaxRetries = 1000 })
	putN(b2, 1)
	b2.srv.InjectError(http.StatusInternalServerError, "general_server_error", 1000)
	_, err = b2.client.ListRows(ctxTimeout(t, 20*time.Second), posts, appwrite.ListQuery{})
	require.Error(t, err)
	var total time.Duration
	for _, d := range b2.clock.Sleeps() {
		total += d
		assert.LessOrEqual(t, d, appwrite.MaxBackoffDefault*3/2+time.Millisecond)
	}
	assert.LessOrEqual(t, total, appwrite.MaxElapsedDefault)
	assert.Greater(t, total, appwrite.MaxElapsedDefault/2)
}

func TestClientErrorsAreNotRetried(t *testing.T) {
	t.Parallel()
	b := setup(t, appwritetest.Options{}, nil)
	_, err := b.client.ListRows(ctxTimeout(t, 10*time.Second), posts, appwrite.ListQuery{})
	assert.ErrorIs(t, err, appwrite.ErrTableNotFound)
	assert.Empty(t, b.clock.Sleeps())
}

func TestHangingPageIsBoundedByContext(t *testing.T) {
	t.Parallel()
	b := setup(t, appwritetest.Options{}, func(o *appwrite.Options) { o.Sleep = nil; o.Now = nil })
	putN(b, 3)
	b.srv.Hang(1)

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := b.client.ListRows(ctx, posts, appwrite.ListQuery{})
	require.Error(t, err)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 5*time.Second)
	assert.EqualValues(t, 1, b.srv.Stats().Hung)
}

func TestHangingAttemptTimesOutAndIsRetried(t *testing.T) {
	t.Parallel()
	b := setup(t, appwritetest.Options{}, func(o *appwrite.Options) { o.RequestTimeout = 200 * time.Millisecond })
	putN(b, 3)
	b.srv.Hang(1)

	p, err := b.client.ListRows(ctxTimeout(t, 10*time.Second), posts, appwrite.ListQuery{})
	require.NoError(t, err)
	assert.Len(t, p.Rows, 3)
	assert.Len(t, b.clock.Sleeps(), 1)
}

func TestCanceledWhileWaitingToRetry(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := setup(t, appwritetest.Options{}, func(o *appwrite.Options) {
		o.Sleep = func(ctx context.Context, d time.Duration) error {
			cancel()
			<-ctx.Done()
			return ctx.Err()
		}
	})
	putN(b, 1)
	b.srv.InjectError(http.StatusServiceUnavailable, "general_server_error", 1)
	_, err := b.client.ListRows(ctx, posts, appwrite.ListQuery{})
	assert.ErrorIs(t, err, context.Canceled)
}

func TestNetworkErrorsAreRetried(t *testing.T) {
	t.Parallel()
	srv := appwritetest.New(appwritetest.Options{APIKey: secretKey})
	endpoint := srv.URL
	srv.Close() // nothing listens there any more
	clock := newFakeClock()
	c, err := appwrite.New(appwrite.Options{Endpoint: endpoint, Project: "p", APIKey: secretKey,
		MaxRetries: 2, Now: clock.Now, Sleep: clock.Sleep})
	require.NoError(t, err)
	_, err = c.ListRows(ctxTimeout(t, 10*time.Second), posts, appwrite.ListQuery{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "gave up after 3 attempts")
	assert.Len(t, clock.Sleeps(), 2)
	assert.NotContains(t, err.Error(), secretKey)
	var ae *appwrite.APIError
	assert.False(t, errors.As(err, &ae))
}
