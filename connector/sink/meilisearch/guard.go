package meilisearch

import (
	"sync"

	"github.com/appwrite-sync/appwrite-sync/connector"
)

// guardCapacity bounds the versions the guard remembers (about 100 bytes each).
const guardCapacity = 200_000

// guard remembers the newest version this process wrote to each recently written document,
// so that Apply skips an item older than it (the Sink contract: an older version never
// overwrites a newer one). Meilisearch cannot compare versions itself, so this is the only
// guard inside the sink; it covers what one process wrote lately, and the ledger (one in-flight
// batch per row, newest version only) covers the rest. See the package documentation.
//
// Two generations approximate an LRU at O(1) cost: lookups read both, writes go to the current
// one, and when it is full the previous generation is dropped.
type guard struct {
	mu        sync.Mutex
	cur, prev map[string]connector.Version
	perGen    int
}

func newGuard(capacity int) *guard {
	return &guard{cur: map[string]connector.Version{}, perGen: max(1, capacity/2)}
}

// stale reports whether v is older than the version last written to the document key.
func (g *guard) stale(key string, v connector.Version) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	w, ok := g.cur[key]
	if !ok {
		w, ok = g.prev[key]
	}
	return ok && v.Compare(w) < 0
}

// written records that v of the document key was applied.
func (g *guard) written(key string, v connector.Version) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if w, ok := g.cur[key]; ok && v.Compare(w) < 0 {
		return
	}
	if w, ok := g.prev[key]; ok && v.Compare(w) < 0 {
		v = w
	}
	if len(g.cur) >= g.perGen {
		g.prev, g.cur = g.cur, make(map[string]connector.Version, g.perGen)
	}
	g.cur[key] = v
}
