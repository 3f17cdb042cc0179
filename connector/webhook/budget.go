package webhook

import (
	"container/list"
	"context"
	"errors"
	"sync"
	"time"
)

// The intake budget bounds the memory of request bodies being read at once. The signature
// covers the whole body, so every byte of a request must be read before anything can tell
// Appwrite from a stranger; without a bound, a few hundred connections that announce large
// bodies and trickle them hold gigabytes (seen: 400 connections, 5 MiB each, RSS 28 MiB →
// 1 GiB in 20 s, against a 256 Mi sidecar limit).
//
// A request reserves its announced Content-Length (max_body_bytes when it announces none)
// before its first byte is read, and holds the reservation until it is answered. Reserving
// the whole body at once, rather than chunk by chunk as it arrives, means two half-read
// bodies can never each wait for the bytes the other holds. The reservation is accounting
// only: the buffer grows as the bytes arrive (readBody).
//
// Sources (client IPs) are served from two pools:
//   - the reserve, a share of the budget only trusted sources may use: those that delivered a
//     validly signed webhook within trustFor. Appwrite keeps getting through however many
//     strangers are waiting.
//   - the shared pool, open to everyone, in which one source may hold at most a fair share
//     (sourceShare of the pool, and at least one body of the largest size), so one address
//     cannot take all of it.
//
// A request that finds no room waits, up to the wait bound, for another request to finish;
// then it is refused with 503 (counted), having cost a goroutine and the kernel's socket
// buffer, nothing of the heap.
const (
	// BodyWaitDefault is how long a request waits for room in the budget before 503. Appwrite
	// gives a delivery 15 s in all.
	BodyWaitDefault = 10 * time.Second
	// reserveShare is the part of the budget kept for trusted sources.
	reserveShare = 0.5
	// sourceShare is the part of the shared pool one source may hold at once.
	sourceShare = 0.125
	// trustFor is how long a source stays trusted after its last validly signed request.
	trustFor = time.Hour
	// maxTrusted bounds the trusted sources remembered; the least recent is forgotten first.
	// Only requests signed with a configured key add one, so strangers cannot grow it.
	maxTrusted = 4096
)

// errBudgetWait means a request found no room in the intake budget within the wait bound.
var errBudgetWait = errors.New("no room for the request body in the intake budget")

// budget is the intake budget. The zero value is not usable: see newBudget.
type budget struct {
	wait       time.Duration
	perSource  int64 // most a source may hold in the shared pool
	now        func() time.Time
	mu         sync.Mutex
	reserve    int64 // free bytes of the reserve
	shared     int64 // free bytes of the shared pool
	held       map[string]int64
	changed    chan struct{} // closed (and replaced) when bytes are given back while someone waits
	waiting    int           // requests waiting on changed
	trusted    map[string]*list.Element
	trustOrder *list.List // of *trustedSource, most recent first
}

type trustedSource struct {
	source string
	at     time.Time
}

// grant is what one request holds; release gives it back (once). A request takes the budget's
// lock twice: once in acquire and once in release, which also records whether its source
// proved itself (trust), so the hot path never takes it a third time.
type grant struct {
	b       *budget
	source  string
	reserve int64
	shared  int64
}

// newBudget divides total bytes into the reserve and the shared pool. A source may hold at
// least maxBody of the shared pool, so that any body within the limit can be read.
func newBudget(total, maxBody int64, wait time.Duration, now func() time.Time) *budget {
	reserve := int64(float64(total) * reserveShare)
	shared := total - reserve
	per := max(int64(float64(shared)*sourceShare), maxBody)
	return &budget{wait: wait, perSource: per, now: now, reserve: reserve, shared: shared,
		held: map[string]int64{}, changed: make(chan struct{}), trusted: map[string]*list.Element{}, trustOrder: list.New()}
}

// acquire reserves n bytes for a request from source, waiting up to the wait bound (or until
// ctx ends) for room.
func (b *budget) acquire(ctx context.Context, source string, n int64) (grant, error) {
	var timeout <-chan time.Time
	for {
		b.mu.Lock()
		if g, ok := b.take(source, n); ok {
			b.mu.Unlock()
			return g, nil
		}
		changed := b.changed
		b.waiting++
		b.mu.Unlock()
		if timeout == nil {
			t := time.NewTimer(b.wait)
			defer t.Stop()
			timeout = t.C
		}
		var err error
		select {
		case <-changed:
		case <-timeout:
			err = errBudgetWait
		case <-ctx.Done():
			err = errBudgetWait
		}
		b.mu.Lock()
		b.waiting--
		b.mu.Unlock()
		if err != nil {
			return grant{}, err
		}
	}
}

// take reserves n bytes if there is room; the caller holds mu.
func (b *budget) take(source string, n int64) (grant, bool) {
	if b.isTrusted(source) && b.reserve >= n {
		b.reserve -= n
		return grant{b: b, source: source, reserve: n}, true
	}
	if b.shared >= n && b.held[source]+n <= b.perSource {
		b.shared -= n
		b.held[source] += n
		return grant{b: b, source: source, shared: n}, true
	}
	return grant{}, false
}

// release gives the grant's bytes back and wakes the requests waiting for room. signed says
// the request was validly signed: its source is then trusted (see trust).
func (g *grant) release(signed bool) {
	if g.b == nil {
		return
	}
	b := g.b
	g.b = nil
	var now time.Time
	if signed {
		now = b.now()
	}
	b.mu.Lock()
	if signed {
		b.trustLocked(g.source, now)
	}
	b.reserve += g.reserve
	if g.shared > 0 {
		b.shared += g.shared
		if b.held[g.source] -= g.shared; b.held[g.source] <= 0 {
			delete(b.held, g.source)
		}
	}
	if b.waiting > 0 { // the common case, nobody waiting, allocates nothing
		close(b.changed)
		b.changed = make(chan struct{})
	}
	b.mu.Unlock()
}

// trust marks source as having delivered a validly signed request now. Requests do it as they
// release their grant; this is for tests.
func (b *budget) trust(source string) {
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.trustLocked(source, now)
}

// trustLocked marks source as having delivered a validly signed request at now; the caller
// holds mu.
func (b *budget) trustLocked(source string, now time.Time) {
	if e, ok := b.trusted[source]; ok {
		e.Value.(*trustedSource).at = now
		b.trustOrder.MoveToFront(e)
		return
	}
	b.trusted[source] = b.trustOrder.PushFront(&trustedSource{source: source, at: now})
	if b.trustOrder.Len() > maxTrusted {
		last := b.trustOrder.Back()
		b.trustOrder.Remove(last)
		delete(b.trusted, last.Value.(*trustedSource).source)
	}
}

// isTrusted reports whether source signed a request within trustFor; the caller holds mu.
func (b *budget) isTrusted(source string) bool {
	e, ok := b.trusted[source]
	return ok && b.now().Sub(e.Value.(*trustedSource).at) < trustFor
}

// free returns the free bytes of the reserve and the shared pool (tests, metrics).
func (b *budget) free() (reserve, shared int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.reserve, b.shared
}
