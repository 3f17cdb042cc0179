package meilisink

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/connector/sink"
)

func gv(ms int, op connector.Op, seq int64) packedVersion {
	return pack(sink.Item{Seq: seq, Version: connector.Version{UpdatedAt: time.UnixMilli(int64(ms)).UTC(), Op: op}})
}

// The guard orders like the ledger hands versions out: ($updatedAt, op), then the ledger's
// seq, whatever the content hashes (which it does not look at).
func TestGuardOrdersLikeTheLedger(t *testing.T) {
	t.Parallel()
	g := newGuard(4)
	require.False(t, g.stale("a", gv(5, connector.OpUpsert, 10)), "an unknown document is never stale")
	g.written("a", gv(5, connector.OpUpsert, 10))
	for _, c := range []struct {
		v     packedVersion
		stale bool
	}{
		{gv(4, connector.OpDelete, 99), true},  // older instant, whatever the seq
		{gv(5, connector.OpUpsert, 9), true},   // same instant, a version the ledger replaced
		{gv(5, connector.OpUpsert, 10), false}, // the same version (re-projection)
		{gv(5, connector.OpUpsert, 11), false}, // same instant, a version the ledger advanced to
		{gv(5, connector.OpDelete, 1), false},  // a delete wins at the same instant
		{gv(6, connector.OpUpsert, 0), false},  // newer instant
	} {
		require.Equal(t, c.stale, g.stale("a", c.v), "%+v", c.v)
	}
	// An older write never lowers the remembered version.
	g.written("a", gv(3, connector.OpUpsert, 50))
	require.True(t, g.stale("a", gv(4, connector.OpUpsert, 50)))
}

func TestGuardForgetsTheOldestGeneration(t *testing.T) {
	t.Parallel()
	g := newGuard(4) // two generations of two
	g.written("a", gv(5, connector.OpUpsert, 0))
	g.written("b", gv(5, connector.OpUpsert, 0))
	g.written("c", gv(5, connector.OpUpsert, 0)) // a, b move to the previous generation
	require.True(t, g.stale("a", gv(4, connector.OpUpsert, 0)), "the previous generation is still read")
	// Rewriting a document from the previous generation keeps the newer of both versions.
	g.written("a", gv(1, connector.OpUpsert, 0))
	require.True(t, g.stale("a", gv(4, connector.OpUpsert, 0)))
	g.written("d", gv(5, connector.OpUpsert, 0))
	g.written("e", gv(5, connector.OpUpsert, 0)) // c, a(, d) current; b is dropped
	require.False(t, g.stale("b", gv(4, connector.OpUpsert, 0)), "the oldest generation is forgotten")
	require.True(t, g.stale("a", gv(4, connector.OpUpsert, 0)))
}

// BenchmarkGuardMemory reports the heap a full guard holds per remembered document (20-byte
// keys, as the sink writes them).
func BenchmarkGuardMemory(b *testing.B) {
	for n := 0; n < b.N; n++ {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		g := newGuard(guardCapacity)
		for i := 0; i < guardCapacity; i++ {
			g.written(fmt.Sprintf("posts\x00doc-%08d", i), gv(i, connector.OpUpsert, int64(i)))
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(guardCapacity), "B/entry")
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "MiB")
		runtime.KeepAlive(g)
	}
}
