package appwrite_test

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector/appwrite"
	"github.com/appwrite-sync/appwrite-sync/internal/appwritetest"
)

// inFlight counts concurrent requests through a transport.
type inFlight struct {
	next     http.RoundTripper
	mu       sync.Mutex
	now, max int
}

func (f *inFlight) RoundTrip(r *http.Request) (*http.Response, error) {
	f.mu.Lock()
	f.now++
	f.max = max(f.max, f.now)
	f.mu.Unlock()
	defer func() { f.mu.Lock(); f.now--; f.mu.Unlock() }()
	return f.next.RoundTrip(r)
}

// A parallel full scan reads every row once, in $sequence order, across gaps, with requests
// overlapping; rows created while it runs are read by its keyset tail; a resumed scan starts
// after the checkpoint (Through) it was given.
func TestScanParallelWindows(t *testing.T) {
	t.Parallel()
	for _, asString := range []bool{false, true} {
		t.Run(fmt.Sprintf("sequenceAsString=%v", asString), func(t *testing.T) {
			t.Parallel()
			tr := &inFlight{next: http.DefaultTransport}
			b := setup(t, appwritetest.Options{SequenceAsString: asString}, func(o *appwrite.Options) {
				o.HTTPClient = &http.Client{Transport: tr}
			})
			putN(b, 205)
			for i := 50; i < 80; i++ { // a gap: 3 windows of 10 hold nothing
				require.True(t, b.srv.Delete(posts, fmt.Sprintf("row%03d", i)))
			}
			b.srv.SetLatency(20 * time.Millisecond)
			var seen []string
			var throughs []int64
			added := false
			err := b.client.ScanParallel(ctxTimeout(t, 20*time.Second), posts, appwrite.ListQuery{}, 4, func(p appwrite.Page) error {
				n, err := strconv.ParseInt(p.Through, 10, 64)
				require.NoError(t, err)
				throughs = append(throughs, n)
				seen = append(seen, ids(t, rawRows(p)...)...)
				if !added { // created after the scan found the highest $sequence
					b.srv.Put(posts, map[string]any{"$id": "late1", "title": "x"})
					b.srv.Put(posts, map[string]any{"$id": "late2", "title": "x"})
					added = true
				}
				return nil
			})
			require.NoError(t, err)
			var want []string
			for i := 1; i <= 205; i++ {
				if i < 50 || i >= 80 {
					want = append(want, fmt.Sprintf("row%03d", i))
				}
			}
			want = append(want, "late1", "late2")
			assert.Equal(t, want, seen, "every row exactly once, in $sequence order")
			for i := 1; i < len(throughs); i++ {
				assert.Less(t, throughs[i-1], throughs[i], "checkpoints strictly increase")
			}
			assert.GreaterOrEqual(t, tr.max, 3, "windows are fetched concurrently")
			var windows int
			for _, r := range b.srv.Requests() {
				if strings.Contains(strings.Join(r.Queries, " "), `"lessThanEqual","attribute":"$sequence"`) {
					windows++
				}
			}
			assert.Equal(t, 21, windows, "one request per window of 10 up to $sequence 205")

			// Resuming from a checkpoint in the middle reads only what follows it.
			var resumed []string
			require.NoError(t, b.client.ScanParallel(ctxTimeout(t, 20*time.Second), posts, appwrite.ListQuery{AfterSequence: "150"}, 4,
				func(p appwrite.Page) error { resumed = append(resumed, ids(t, rawRows(p)...)...); return nil }))
			assert.Equal(t, want[len(want)-57:], resumed)
		})
	}
}

// A table that lost most of its rows is not read one empty window at a time: after a few
// sparse windows the scan continues by keyset.
func TestScanParallelSparseFallsBackToKeyset(t *testing.T) {
	t.Parallel()
	b := setup(t, appwritetest.Options{}, nil)
	putN(b, 600)
	for i := 1; i <= 600; i++ {
		if i%50 != 0 {
			require.True(t, b.srv.Delete(posts, fmt.Sprintf("row%03d", i)))
		}
	}
	var seen []string
	require.NoError(t, b.client.ScanParallel(ctxTimeout(t, 20*time.Second), posts, appwrite.ListQuery{}, 2,
		func(p appwrite.Page) error { seen = append(seen, ids(t, rawRows(p)...)...); return nil }))
	require.Len(t, seen, 12)
	assert.Less(t, b.srv.Stats().Lists, int64(20), "not 60 window requests for 12 rows")
}

func rawRows(p appwrite.Page) [][]byte {
	out := make([][]byte, len(p.Rows))
	for i, r := range p.Rows {
		out[i] = r
	}
	return out
}
