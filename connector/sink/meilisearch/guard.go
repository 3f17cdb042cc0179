package meilisearch

import (
	"bytes"
	"sync"

	"github.com/appwrite-sync/appwrite-sync/connector"
)

// guardCapacity bounds the versions the guard remembers: about 120 bytes each with SHA-256
// content hashes, 11 MiB when full (BenchmarkGuardMemory). It was 200,000 unpacked
// versions (31 MiB), a sixth of a backfill's RSS; what the guard is for (a direct caller
// re-applying a version it wrote lately) needs far fewer.
const guardCapacity = 100_000

// guard remembers the newest version this process wrote to each recently written document,
// so that Apply skips an item older than it (the Sink contract: an older version never
// overwrites a newer one). Meilisearch cannot compare versions itself, so this is the only
// guard inside the sink; it covers what one process wrote lately, and the ledger (one in-flight
// batch per row, newest version only) covers the rest. See the package documentation.
//
// Two generations approximate an LRU at O(1) cost: lookups read both, writes go to the current
// one, and when it is full the previous generation is dropped. Versions are kept packed
// (packedVersion): no pointers for the collector to trace and no separate hash allocation,
// which made the guard the largest live object of a backfill.
type guard struct {
	mu        sync.Mutex
	cur, prev map[string]packedVersion
	perGen    int
}

// packedVersion is a connector.Version in 48 pointer-free bytes. Content hashes are SHA-256
// (32 bytes); a longer hash is kept as its first 32 bytes and its length, which orders it
// like bytes.Compare unless two hashes share those 32 bytes.
type packedVersion struct {
	unixNano int64
	op       connector.Op
	n        uint8
	hash     [32]byte
}

func pack(v connector.Version) packedVersion {
	p := packedVersion{unixNano: v.UpdatedAt.UnixNano(), op: v.Op, n: uint8(min(len(v.Hash), 255))}
	copy(p.hash[:], v.Hash)
	return p
}

// compare orders like connector.Version.Compare.
func (p packedVersion) compare(q packedVersion) int {
	switch {
	case p.unixNano != q.unixNano:
		if p.unixNano < q.unixNano {
			return -1
		}
		return 1
	case p.op != q.op:
		if p.op < q.op {
			return -1
		}
		return 1
	}
	if c := bytes.Compare(p.hash[:min(p.n, 32)], q.hash[:min(q.n, 32)]); c != 0 {
		return c
	}
	switch {
	case p.n < q.n:
		return -1
	case p.n > q.n:
		return 1
	}
	return 0
}

func newGuard(capacity int) *guard {
	return &guard{cur: map[string]packedVersion{}, perGen: max(1, capacity/2)}
}

// stale reports whether v is older than the version last written to the document key.
func (g *guard) stale(key string, v connector.Version) bool {
	p := pack(v)
	g.mu.Lock()
	defer g.mu.Unlock()
	w, ok := g.cur[key]
	if !ok {
		w, ok = g.prev[key]
	}
	return ok && p.compare(w) < 0
}

// written records that v of the document key was applied.
func (g *guard) written(key string, v connector.Version) {
	p := pack(v)
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
