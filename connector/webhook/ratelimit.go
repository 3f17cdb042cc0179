package webhook

import (
	"container/list"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/time/rate"
)

// Defaults of RateLimit.
const (
	// RateBurstDefault is RateLimit.Burst when unset.
	RateBurstDefault = 200
	// RateMaxSourcesDefault is RateLimit.MaxSources when unset: at about 200 bytes per
	// source, the limiter holds at most ~2 MB whatever the number of client IPs.
	RateMaxSourcesDefault = 10000
	// rateMaxIdle caps how long an idle source is remembered (see limiter.idle).
	rateMaxIdle = 24 * time.Hour
)

// RateLimit bounds the requests one source (client IP) may send to the webhook routes, with a
// token bucket per source. The zero value is off.
//
// Appwrite counts a 429 as a failed delivery, never retries it, and disables the webhook
// after 10 consecutive failures: set the rate well above the expected webhook rate.
//
// The source is gin's Context.ClientIP. A gin engine believes X-Forwarded-For from every peer
// unless told otherwise: call SetTrustedProxies on it (nil: trust none) before serving.
type RateLimit struct {
	// PerSecond is the sustained rate per source; 0 (default) disables the limit.
	PerSecond float64
	// Burst is how many requests a source may send at once. Default RateBurstDefault.
	Burst int
	// MaxSources caps how many sources are tracked; when full, the least recently seen one is
	// forgotten (it starts again with a full bucket). Default RateMaxSourcesDefault.
	MaxSources int
}

// limiter is a set of token buckets (golang.org/x/time/rate) keyed by source, in
// least-recently-seen order so both eviction rules are O(1) per request:
//   - a source not seen for idle (the time its bucket takes to fill up) is forgotten:
//     a new bucket would be identical, so this changes nothing;
//   - beyond max sources, the least recently seen one is forgotten.
type limiter struct {
	rate  float64 // tokens per second
	burst float64
	max   int
	idle  time.Duration

	mu      sync.Mutex
	order   *list.List // of *bucket; front: most recently seen
	sources map[string]*list.Element
}

type bucket struct {
	key  string
	lim  *rate.Limiter
	last time.Time
}

// newLimiter returns nil when rl is off.
func newLimiter(rl RateLimit) (*limiter, error) {
	if rl.PerSecond == 0 {
		return nil, nil
	}
	if rl.PerSecond < 0 || math.IsNaN(rl.PerSecond) || math.IsInf(rl.PerSecond, 0) {
		return nil, fmt.Errorf("limits.rate_per_source: must be a non-negative number, got %v", rl.PerSecond)
	}
	if rl.Burst < 0 {
		return nil, fmt.Errorf("limits.burst: must be positive, got %d", rl.Burst)
	}
	if rl.MaxSources < 0 {
		return nil, fmt.Errorf("rate limit: MaxSources must be positive, got %d", rl.MaxSources)
	}
	if rl.Burst == 0 {
		rl.Burst = RateBurstDefault
	}
	if rl.MaxSources == 0 {
		rl.MaxSources = RateMaxSourcesDefault
	}
	idle := rateMaxIdle
	if fill := float64(rl.Burst) / rl.PerSecond; fill < idle.Seconds() {
		idle = time.Duration(fill * float64(time.Second))
	}
	return &limiter{rate: rl.PerSecond, burst: float64(rl.Burst), max: rl.MaxSources, idle: idle,
		order: list.New(), sources: map[string]*list.Element{}}, nil
}

// allow takes a token from key's bucket at now. When there is none it returns false and how
// long until there will be one.
func (l *limiter) allow(key string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for e := l.order.Back(); e != nil; e = l.order.Back() {
		b := e.Value.(*bucket)
		if now.Sub(b.last) < l.idle {
			break
		}
		l.order.Remove(e)
		delete(l.sources, b.key)
	}
	var b *bucket
	if e, ok := l.sources[key]; ok {
		b = e.Value.(*bucket)
		l.order.MoveToFront(e)
		if now.After(b.last) {
			b.last = now
		}
	} else {
		if l.order.Len() >= l.max {
			old := l.order.Back()
			l.order.Remove(old)
			delete(l.sources, old.Value.(*bucket).key)
		}
		b = &bucket{key: key, lim: rate.NewLimiter(rate.Limit(l.rate), int(l.burst)), last: now}
		l.sources[key] = l.order.PushFront(b)
	}
	if b.lim.AllowN(now, 1) {
		return true, 0
	}
	return false, time.Duration((1 - b.lim.TokensAt(now)) / l.rate * float64(time.Second))
}

// size is the number of sources tracked.
func (l *limiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.sources)
}

// retryAfter renders a wait as whole seconds for Retry-After (at least 1).
func retryAfter(d time.Duration) int {
	s := int(math.Ceil(d.Seconds()))
	if s < 1 {
		s = 1
	}
	return s
}

// limited answers 429 when the request's source is over the rate limit, and reports whether
// it did. The source is gin's ClientIP: the TCP peer, or what a trusted proxy says it is
// (configure the engine with SetTrustedProxies).
func (h *Handler) limited(c *gin.Context, ep *Endpoint, start time.Time) bool {
	if h.limiter == nil {
		return false
	}
	source := sourceOf(c)
	ok, wait := h.limiter.allow(source, start)
	if ok {
		return false
	}
	secs := retryAfter(wait)
	res := Result{Webhook: ep.Name, Outcome: OutcomeRateLimited, Status: http.StatusTooManyRequests,
		Reason: fmt.Sprintf("source %s over %g requests/s (burst %g)", source, h.limiter.rate, h.limiter.burst)}
	res.Latency = h.now().Sub(start)
	h.report(res)
	c.Header("Retry-After", strconv.Itoa(secs))
	c.JSON(http.StatusTooManyRequests, gin.H{
		"error": fmt.Sprintf("too many requests from %s: over limits.rate_per_source (%g/s, burst %g); nothing was stored",
			source, h.limiter.rate, h.limiter.burst),
		"webhook":     ep.Name,
		"retry_after": secs,
		"hint": "Appwrite counts a 429 as a failed delivery and disables the webhook after 10 in a row: " +
			"raise limits.rate_per_source and limits.burst well above the webhook rate, or set rate_per_source: 0 to turn the limit off",
	})
	return true
}
