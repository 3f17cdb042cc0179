package meilisink

import (
	"cmp"
	"sync"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/connector/sink"
)

// guardCapacity bounds the versions the guard remembers: what the guard is for (a direct
// caller re-applying a version it wrote lately) needs few, and a full guard's memory counts in
// a backfill's RSS (BenchmarkGuardMemory measures it; BENCHMARKS.md).
const guardCapacity = 100_000

// guard remembers the newest version this process wrote to each recently written document,
// so that Apply skips an item older than it (the Sink contract: an older version never
// overwrites a newer one). Meilisearch cannot compare versions itself, so this is the only
// guard inside the sink; it covers what one process wrote lately, and the ledger (one in-flight
// batch per row, newest version only) covers the rest. See the package documentation.
//
// Two generations approximate an LRU at O(1) cost: lookups read both, writes go to the current
// one, and when it is full the previous generation is dropped. Versions are kept packed
// (packedVersion): no pointers for the collector to trace, which made the guard the largest
// live object of a backfill.
type guard struct {
	mu        sync.Mutex
	cur, prev map[string]packedVersion
	perGen    int
}

// packedVersion orders a document's versions as the ledger does: ($updatedAt, op), then the
// ledger's seq of the version (sink.Item.Seq), which grows with every version the ledger
// advances a row to. Not the content hash: at the same ($updatedAt, op) the ledger may prefer
// the version with the smaller hash (a row read from the REST API outranks a webhook's), and
// the index must follow it.
type packedVersion struct {
	unixNano int64
	seq      int64
	op       connector.Op
}

func pack(it sink.Item) packedVersion {
	return packedVersion{unixNano: it.Version.UpdatedAt.UnixNano(), seq: it.Seq, op: it.Version.Op}
}

// compare orders p and q: -1, 0 or +1.
func (p packedVersion) compare(q packedVersion) int {
	if c := cmp.Compare(p.unixNano, q.unixNano); c != 0 {
		return c
	}
	if c := cmp.Compare(p.op, q.op); c != 0 {
		return c
	}
	return cmp.Compare(p.seq, q.seq)
}

func newGuard(capacity int) *guard {
	return &guard{cur: map[string]packedVersion{}, perGen: max(1, capacity/2)}
}

// stale reports whether p is older than the version last written to the document key.
func (g *guard) stale(key string, p packedVersion) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	w, ok := g.cur[key]
	if !ok {
		w, ok = g.prev[key]
	}
	return ok && p.compare(w) < 0
}

// written records that version p of the document key was applied.
func (g *guard) written(key string, p packedVersion) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if w, ok := g.cur[key]; ok && p.compare(w) < 0 {
		return
	}
	if w, ok := g.prev[key]; ok && p.compare(w) < 0 {
		p = w
	}
	if len(g.cur) >= g.perGen {
		g.prev, g.cur = g.cur, make(map[string]packedVersion, g.perGen)
	}
	g.cur[key] = p
}
