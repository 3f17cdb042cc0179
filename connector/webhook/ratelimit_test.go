package webhook

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testClock is a settable clock for Options.Now.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *testClock) add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

func from(addr string) func(*http.Request) {
	return func(r *http.Request) { r.RemoteAddr = addr }
}

func TestRateLimitOffByDefault(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	require.Nil(t, b.handler.limiter)
	for i := 0; i < RateBurstDefault+50; i++ {
		w, _ := b.post(t, testPath, testHeader, b.rowSig, b.row, from("203.0.113.9:4000"))
		require.Equal(t, http.StatusOK, w.Code, "request %d: %s", i, w.Body.String())
	}
}

func TestRateLimit429AfterBurstPerSource(t *testing.T) {
	t.Parallel()
	b, clock := setupRateLimited(t, RateLimit{PerSecond: 0.5, Burst: 3})
	b.engine.SetTrustedProxies(nil) // as serve configures it by default
	a := from("203.0.113.1:4000")
	for i := 0; i < 3; i++ {
		w, _ := b.post(t, testPath, testHeader, b.rowSig, b.row, a)
		require.Equal(t, http.StatusOK, w.Code, "within the burst")
	}
	stored := b.rec.stored()
	w, resp := b.post(t, testPath, testHeader, b.rowSig, b.row, a)
	require.Equal(t, http.StatusTooManyRequests, w.Code, w.Body.String())
	assert.Equal(t, "2", w.Header().Get("Retry-After"), "one token at 0.5/s takes 2s")
	assert.Contains(t, resp["error"], "too many requests from 203.0.113.1: over limits.rate_per_source (0.5/s, burst 3); nothing was stored")
	assert.Equal(t, "webhooks[0]", resp["webhook"])
	assert.Equal(t, float64(2), resp["retry_after"])
	assert.Contains(t, resp["hint"], "disables the webhook after 10")
	assert.Equal(t, stored, b.rec.stored(), "a refused request stores nothing")

	// Wrong credentials are refused by the limit too, before anything is read.
	w, _ = b.post(t, testPath, testHeader, "bm9wZQ==", b.row, a)
	require.Equal(t, http.StatusTooManyRequests, w.Code)

	// Another source has its own bucket.
	w, _ = b.post(t, testPath, testHeader, b.rowSig, b.row, from("198.51.100.2:5000"))
	require.Equal(t, http.StatusOK, w.Code, "another IP still passes")
	// The same IP on another port is the same source.
	w, _ = b.post(t, testPath, testHeader, b.rowSig, b.row, from("203.0.113.1:4001"))
	require.Equal(t, http.StatusTooManyRequests, w.Code)
	// X-Forwarded-For from an untrusted peer changes nothing.
	w, _ = b.post(t, testPath, testHeader, b.rowSig, b.row, func(r *http.Request) {
		r.RemoteAddr = "203.0.113.1:4002"
		r.Header.Set("X-Forwarded-For", "192.0.2.99")
	})
	require.Equal(t, http.StatusTooManyRequests, w.Code, "a spoofed X-Forwarded-For must not reset the bucket")

	// Tokens come back at the configured rate.
	clock.add(2 * time.Second)
	w, _ = b.post(t, testPath, testHeader, b.rowSig, b.row, a)
	require.Equal(t, http.StatusOK, w.Code, "one token after 2s")
	w, _ = b.post(t, testPath, testHeader, b.rowSig, b.row, a)
	require.Equal(t, http.StatusTooManyRequests, w.Code, "and only one")

	var limited []Result
	for _, r := range b.observed() {
		if r.Outcome == OutcomeRateLimited {
			limited = append(limited, r)
		}
	}
	require.Len(t, limited, 5)
	assert.Equal(t, http.StatusTooManyRequests, limited[0].Status)
	assert.Equal(t, "webhooks[0]", limited[0].Webhook)
	assert.Equal(t, logrus.WarnLevel, b.logs.LastEntry().Level)
	assert.Equal(t, "rate_limited", b.logs.LastEntry().Data["outcome"])
}

func TestRateLimitKeysOnTrustedProxyHeader(t *testing.T) {
	t.Parallel()
	b, _ := setupRateLimited(t, RateLimit{PerSecond: 1, Burst: 1})
	require.NoError(t, b.engine.SetTrustedProxies([]string{"10.0.0.0/8"}))
	via := func(proxy, client string) func(*http.Request) {
		return func(r *http.Request) {
			r.RemoteAddr = proxy + ":4000"
			r.Header.Set("X-Forwarded-For", client)
		}
	}
	w, _ := b.post(t, testPath, testHeader, b.rowSig, b.row, via("10.1.2.3", "198.51.100.1"))
	require.Equal(t, http.StatusOK, w.Code)
	w, _ = b.post(t, testPath, testHeader, b.rowSig, b.row, via("10.1.2.4", "198.51.100.1"))
	require.Equal(t, http.StatusTooManyRequests, w.Code, "the client behind the proxy is the source, whichever proxy")
	w, _ = b.post(t, testPath, testHeader, b.rowSig, b.row, via("10.1.2.3", "198.51.100.2"))
	require.Equal(t, http.StatusOK, w.Code, "another client behind the same proxy passes")
}

func TestRateLimiterBounded(t *testing.T) {
	t.Parallel()
	l, err := newLimiter(RateLimit{PerSecond: 1, Burst: 2, MaxSources: 100})
	require.NoError(t, err)
	now := time.Date(2026, 3, 26, 10, 0, 0, 0, time.UTC)
	for i := 0; i < 5000; i++ {
		ok, _ := l.allow(fmt.Sprintf("10.%d.%d.%d", i>>16, (i>>8)&255, i&255), now)
		require.True(t, ok, "a new source starts with a full bucket")
		require.LessOrEqual(t, l.size(), 100)
	}
	require.Equal(t, 100, l.size(), "a flood of source IPs is capped")
	require.Len(t, l.sources, l.order.Len())

	// The most recently seen source is still tracked (its bucket is half spent); the oldest
	// was forgotten.
	last := fmt.Sprintf("10.%d.%d.%d", 4999>>16, (4999>>8)&255, 4999&255)
	require.Contains(t, l.sources, last)
	require.NotContains(t, l.sources, "10.0.0.0")
	ok, _ := l.allow(last, now)
	require.True(t, ok)
	ok, wait := l.allow(last, now)
	require.False(t, ok, "burst 2 spent")
	require.Equal(t, time.Second, wait)

	// Sources idle for as long as a bucket takes to fill (2 tokens at 1/s) are dropped: they
	// would start with a full bucket anyway.
	ok, _ = l.allow("192.0.2.1", now.Add(2*time.Second))
	require.True(t, ok)
	require.Equal(t, 1, l.size(), "idle sources are evicted")
}

func TestRateLimitRetryAfterAndOptions(t *testing.T) {
	t.Parallel()
	assert.Equal(t, 1, retryAfter(0))
	assert.Equal(t, 1, retryAfter(10*time.Millisecond))
	assert.Equal(t, 2, retryAfter(1001*time.Millisecond))

	l, err := newLimiter(RateLimit{})
	require.NoError(t, err)
	require.Nil(t, l, "zero value is off")
	l, err = newLimiter(RateLimit{PerSecond: 1e-9})
	require.NoError(t, err)
	assert.Equal(t, rateMaxIdle, l.idle, "idle time is capped")
	assert.Equal(t, float64(RateBurstDefault), l.burst)
	assert.Equal(t, RateMaxSourcesDefault, l.max)

	v, err := NewVerifier(testURL, []string{"k"})
	require.NoError(t, err)
	_, err = NewHandler(Options{Endpoints: []Endpoint{{URL: testURL, Verifier: v}}, Recorder: NotStored{},
		RateLimit: RateLimit{PerSecond: -1}})
	require.ErrorContains(t, err, "limits.rate_per_source: must be a non-negative number")
	_, err = NewHandler(Options{Endpoints: []Endpoint{{URL: testURL, Verifier: v}}, Recorder: NotStored{},
		RateLimit: RateLimit{PerSecond: 1, Burst: -1}})
	require.ErrorContains(t, err, "limits.burst: must be positive")
}

func TestRateLimitConcurrentSources(t *testing.T) {
	t.Parallel()
	l, err := newLimiter(RateLimit{PerSecond: 1000, Burst: 5, MaxSources: 50})
	require.NoError(t, err)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				l.allow(fmt.Sprintf("src-%d-%d", g, i%80), time.Now())
			}
		}(g)
	}
	wg.Wait()
	require.LessOrEqual(t, l.size(), 50)
	require.Len(t, l.sources, l.order.Len())
}

// setupRateLimited is a handler with the rate limit rl on a clock the test moves.
func setupRateLimited(t *testing.T, rl RateLimit) (*testBundle, *testClock) {
	t.Helper()
	clock := &testClock{t: time.Date(2026, 3, 26, 10, 0, 0, 0, time.UTC)}
	b := setup(t, func(o *Options) {
		o.Now = clock.now
		o.RateLimit = rl
	})
	return b, clock
}
