package meilisearch

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector"
)

func gv(ms int, op connector.Op, hash string) connector.Version {
	return connector.Version{UpdatedAt: time.UnixMilli(int64(ms)).UTC(), Op: op, Hash: []byte(hash)}
}

func TestGuardOrdersLikeVersionCompare(t *testing.T) {
	g := newGuard(4)
	require.False(t, g.stale("a", gv(5, connector.OpUpsert, "m")), "an unknown document is never stale")
	g.written("a", gv(5, connector.OpUpsert, "m"))
	for _, c := range []struct {
		v     connector.Version
		stale bool
	}{
		{gv(4, connector.OpDelete, "z"), true},   // older instant
		{gv(5, connector.OpUpsert, "a"), true},   // same instant, smaller hash
		{gv(5, connector.OpUpsert, "m"), false},  // the same version
		{gv(5, connector.OpUpsert, "mm"), false}, // longer hash with the same prefix orders after
		{gv(5, connector.OpUpsert, "n"), false},  // greater hash
		{gv(5, connector.OpDelete, "a"), false},  // a delete wins at the same instant
		{gv(6, connector.OpUpsert, ""), false},   // newer instant
	} {
		require.Equal(t, c.stale, g.stale("a", c.v), "%+v", c.v)
		require.Equal(t, c.v.Compare(gv(5, connector.OpUpsert, "m")) < 0, c.stale, "the guard must agree with Version.Compare")
	}
	// An older write never lowers the remembered version.
	g.written("a", gv(3, connector.OpUpsert, "m"))
	require.True(t, g.stale("a", gv(4, connector.OpUpsert, "m")))
	// Full SHA-256 hashes, differing in the last byte only.
	h1, h2 := make([]byte, 32), make([]byte, 32)
	h2[31] = 1
	g.written("h", connector.Version{UpdatedAt: time.UnixMilli(1), Hash: h2})
	require.True(t, g.stale("h", connector.Version{UpdatedAt: time.UnixMilli(1), Hash: h1}))
	require.False(t, g.stale("h", connector.Version{UpdatedAt: time.UnixMilli(1), Hash: h2}))
}

func TestGuardForgetsTheOldestGeneration(t *testing.T) {
	g := newGuard(4) // two generations of two
	g.written("a", gv(5, connector.OpUpsert, ""))
	g.written("b", gv(5, connector.OpUpsert, ""))
	g.written("c", gv(5, connector.OpUpsert, "")) // a, b move to the previous generation
	require.True(t, g.stale("a", gv(4, connector.OpUpsert, "")), "the previous generation is still read")
	// Rewriting a document from the previous generation keeps the newer of both versions.
	g.written("a", gv(1, connector.OpUpsert, ""))
	require.True(t, g.stale("a", gv(4, connector.OpUpsert, "")))
	g.written("d", gv(5, connector.OpUpsert, ""))
	g.written("e", gv(5, connector.OpUpsert, "")) // c, a(, d) current; b is dropped
	require.False(t, g.stale("b", gv(4, connector.OpUpsert, "")), "the oldest generation is forgotten")
	require.True(t, g.stale("a", gv(4, connector.OpUpsert, "")))
}

// BenchmarkGuardMemory reports the heap a full guard holds per remembered document (SHA-256
// hashes, 20-byte keys, as the sink writes them).
func BenchmarkGuardMemory(b *testing.B) {
	for n := 0; n < b.N; n++ {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		g := newGuard(guardCapacity)
		for i := 0; i < guardCapacity; i++ {
			h := make([]byte, 32)
			h[0], h[1], h[2] = byte(i), byte(i>>8), byte(i>>16)
			g.written(fmt.Sprintf("posts\x00doc-%08d", i), connector.Version{UpdatedAt: time.UnixMilli(int64(i)), Hash: h})
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(guardCapacity), "B/entry")
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "MiB")
		runtime.KeepAlive(g)
	}
}
