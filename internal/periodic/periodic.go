// Package periodic runs background work on a ticker until its context ends: the loops of the
// service's sweeps, probes, gauges and heartbeats.
package periodic

import (
	"context"
	"time"
)

// Now calls fn at once and then every d, until ctx ends or fn returns false.
func Now(ctx context.Context, d time.Duration, fn func() bool) {
	loop(ctx, d, true, fn)
}

// After calls fn every d, the first time d from now, until ctx ends or fn returns false.
func After(ctx context.Context, d time.Duration, fn func() bool) {
	loop(ctx, d, false, fn)
}

func loop(ctx context.Context, d time.Duration, now bool, fn func() bool) {
	t := time.NewTicker(d)
	defer t.Stop()
	if now && !fn() {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// A tick and the end of ctx can be ready together; the end wins.
		if ctx.Err() != nil || !fn() {
			return
		}
	}
}
