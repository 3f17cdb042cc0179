// Package clock is the time of the delivery engine: the wall clock in service, and a fake one
// that tests move by hand, so a test about leases, pauses or polling waits for a signal (the
// engine waiting on the clock) instead of for time to pass.
package clock

import (
	"sort"
	"sync"
	"time"
)

// Clock tells the time and waits.
type Clock interface {
	Now() time.Time
	// After is time.After on this clock.
	After(d time.Duration) <-chan time.Time
}

// Wall is the process's clock.
type Wall struct{}

// Now is time.Now.
func (Wall) Now() time.Time { return time.Now() }

// After is time.After.
func (Wall) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Fake is a clock that moves only when Advance is called. Waits that a caller abandoned (the
// other case of its select won) stay pending until they come due; firing them is harmless.
type Fake struct {
	mu      sync.Mutex
	now     time.Time
	waits   []wait
	changed chan struct{} // closed and replaced whenever waits changes
}

type wait struct {
	at time.Time
	ch chan time.Time
}

// NewFake returns a fake clock that reads now.
func NewFake(now time.Time) *Fake { return &Fake{now: now, changed: make(chan struct{})} }

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// After returns a channel that receives the fake time once the clock has moved d on.
func (f *Fake) After(d time.Duration) <-chan time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- f.now
		return ch
	}
	f.waits = append(f.waits, wait{at: f.now.Add(d), ch: ch})
	f.signal()
	return ch
}

// Advance moves the clock d on and fires every wait that came due.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	kept := f.waits[:0]
	for _, w := range f.waits {
		if w.at.After(f.now) {
			kept = append(kept, w)
			continue
		}
		w.ch <- f.now
	}
	clear(f.waits[len(kept):])
	f.waits = kept
	f.signal()
}

// Pending returns how far from now each pending wait comes due, soonest first.
func (f *Fake) Pending() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pending()
}

func (f *Fake) pending() []time.Duration {
	out := make([]time.Duration, len(f.waits))
	for i, w := range f.waits {
		out[i] = w.at.Sub(f.now)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// AwaitWait blocks until a pending wait satisfies ok (given how far from now it comes due) and
// returns that duration, or returns false after timeout (real time).
func (f *Fake) AwaitWait(timeout time.Duration, ok func(d time.Duration) bool) (time.Duration, bool) {
	deadline := time.After(timeout)
	for {
		f.mu.Lock()
		changed := f.changed
		for _, d := range f.pending() {
			if ok(d) {
				f.mu.Unlock()
				return d, true
			}
		}
		f.mu.Unlock()
		select {
		case <-changed:
		case <-deadline:
			return 0, false
		}
	}
}

// signal wakes AwaitWait; the caller holds mu.
func (f *Fake) signal() {
	close(f.changed)
	f.changed = make(chan struct{})
}
