package appwrite

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// newBackoff returns the wait schedule of one request: exponential with ±50% jitter, capped at
// MaxBackoff. The retry loop itself lives in Client.do so that the clock and the sleep can be
// injected and Retry-After honoured exactly.
func newBackoff(o Options) *backoff.ExponentialBackOff {
	b := &backoff.ExponentialBackOff{
		InitialInterval:     o.InitialBackoff,
		RandomizationFactor: backoffRandomFactor,
		Multiplier:          backoffMultiplier,
		MaxInterval:         o.MaxBackoff,
	}
	b.Reset()
	return b
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date (RFC 9110 §10.2.3).
// A date in the past means "now".
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		const maxSecs = int64(365 * 24 * time.Hour / time.Second)
		if secs > maxSecs {
			secs = maxSecs
		}
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	d := t.Sub(now)
	if d < 0 {
		d = 0
	}
	return d, true
}
