package appwrite_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector/appwrite"
	"github.com/appwrite-sync/appwrite-sync/internal/appwritetest"
)

func putN(b *testBundle, n int) {
	for i := 1; i <= n; i++ {
		b.srv.Put(posts, map[string]any{"$id": fmt.Sprintf("row%03d", i), "title": fmt.Sprintf("t%d", i)})
	}
}

func TestScanKeysetSurvivesDeletedCursorRow(t *testing.T) {
	t.Parallel()
	for _, asString := range []bool{false, true} {
		t.Run(fmt.Sprintf("sequenceAsString=%v", asString), func(t *testing.T) {
			t.Parallel()
			b := setup(t, appwritetest.Options{SequenceAsString: asString}, nil)
			putN(b, 35) // pages of 10: 10, 10, 10, 5

			var seen []string
			var seqs []int64
			pages := 0
			err := b.client.Scan(ctxTimeout(t, 10*time.Second), posts, appwrite.ListQuery{}, func(p appwrite.Page) error {
				pages++
				assert.EqualValues(t, -1, p.Total, "total is not asked for")
				for _, r := range p.Rows {
					id, _, seq, err := appwrite.RowMeta(r)
					require.NoError(t, err)
					n, err := strconv.ParseInt(seq, 10, 64)
					require.NoError(t, err)
					seen = append(seen, id)
					seqs = append(seqs, n)
				}
				// Delete the cursor row (the last row of this page) before the next page is
				// asked for: cursorAfter would now fail, a keyset must not care.
				last, _, _, err := appwrite.RowMeta(p.Rows[len(p.Rows)-1])
				require.NoError(t, err)
				require.True(t, b.srv.Delete(posts, last))
				return nil
			})
			require.NoError(t, err)

			want := make([]string, 35)
			for i := range want {
				want[i] = fmt.Sprintf("row%03d", i+1)
			}
			assert.Equal(t, want, seen, "every row exactly once, in $sequence order")
			for i := 1; i < len(seqs); i++ {
				assert.Less(t, seqs[i-1], seqs[i], "$sequence strictly increasing")
			}
			assert.Equal(t, 4, pages)
			assert.Equal(t, 31, b.srv.Len(posts))

			// The keyset is sent as a string value on $sequence.
			var sawKeyset bool
			for _, r := range b.srv.Requests() {
				for _, q := range r.Queries {
					if q == `{"method":"greaterThan","attribute":"$sequence","values":["10"]}` {
						sawKeyset = true
					}
				}
				assert.Equal(t, "false", r.Total)
			}
			assert.True(t, sawKeyset, "requests: %+v", b.srv.Requests())
		})
	}
}

func TestScanSeesRowsAddedAheadAndSkipsRowsDeletedAhead(t *testing.T) {
	t.Parallel()
	b := setup(t, appwritetest.Options{}, nil)
	putN(b, 20)
	var seen []string
	first := true
	err := b.client.Scan(ctxTimeout(t, 10*time.Second), posts, appwrite.ListQuery{}, func(p appwrite.Page) error {
		seen = append(seen, ids(t, toBytes(p.Rows)...)...)
		if first {
			first = false
			b.srv.Delete(posts, "row015")
			b.srv.Put(posts, map[string]any{"$id": "late", "title": "added during the scan"})
		}
		return nil
	})
	require.NoError(t, err)
	assert.Len(t, seen, 20)
	assert.NotContains(t, seen, "row015")
	assert.Equal(t, "late", seen[len(seen)-1])
}

func TestScanStopsAndResumes(t *testing.T) {
	t.Parallel()
	b := setup(t, appwritetest.Options{}, nil)
	putN(b, 25)
	ctx := ctxTimeout(t, 10*time.Second)

	var checkpoint string
	err := b.client.Scan(ctx, posts, appwrite.ListQuery{}, func(p appwrite.Page) error {
		var err error
		checkpoint, err = p.LastSequence()
		require.NoError(t, err)
		return appwrite.ErrStopScan
	})
	require.NoError(t, err)
	assert.Equal(t, "10", checkpoint)

	boom := errors.New("boom")
	err = b.client.Scan(ctx, posts, appwrite.ListQuery{AfterSequence: checkpoint}, func(p appwrite.Page) error {
		assert.Equal(t, "row011", ids(t, p.Rows[0])[0], "resumes after the checkpoint")
		return boom
	})
	assert.ErrorIs(t, err, boom)

	err = b.client.Scan(ctx, posts, appwrite.ListQuery{CursorAfter: "row001"}, func(appwrite.Page) error { return nil })
	assert.ErrorContains(t, err, "Scan pages by $sequence")
}

func TestCursorAfterDeletedRowIsCursorNotFound(t *testing.T) {
	t.Parallel()
	b := setup(t, appwritetest.Options{}, nil)
	putN(b, 15)
	ctx := ctxTimeout(t, 10*time.Second)

	p, err := b.client.ListRows(ctx, posts, appwrite.ListQuery{CursorAfter: "row005"})
	require.NoError(t, err)
	assert.Equal(t, "row006", ids(t, p.Rows[0])[0])

	require.True(t, b.srv.Delete(posts, "row010"))
	_, err = b.client.ListRows(ctx, posts, appwrite.ListQuery{CursorAfter: "row010"})
	require.Error(t, err)
	assert.ErrorIs(t, err, appwrite.ErrCursorNotFound)
	var ae *appwrite.APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, 400, ae.Status)
	assert.Equal(t, "general_cursor_not_found", ae.Type)
	assert.Contains(t, err.Error(), "page by keyset on $sequence")
	assert.Equal(t, 1, ae.Attempts, "a 400 is not retried")
}

func TestTotal(t *testing.T) {
	t.Parallel()
	b := setup(t, appwritetest.Options{}, nil)
	b.srv.Seed(posts, 6000, 300)
	ctx := ctxTimeout(t, 10*time.Second)

	p, err := b.client.ListRows(ctx, posts, appwrite.ListQuery{})
	require.NoError(t, err)
	assert.EqualValues(t, -1, p.Total)
	assert.Len(t, p.Rows, 10)
	reqs := b.srv.Requests()
	assert.Equal(t, "false", reqs[len(reqs)-1].Total)

	p, err = b.client.ListRows(ctx, posts, appwrite.ListQuery{WithTotal: true, Limit: 3})
	require.NoError(t, err)
	assert.EqualValues(t, 5000, p.Total, "Appwrite stops counting at 5000")
	assert.Len(t, p.Rows, 3)
	reqs = b.srv.Requests()
	assert.Empty(t, reqs[len(reqs)-1].Total)

	// A server before 1.8.1 ignores total=false and counts anyway: the client still says
	// "unknown" because it did not ask.
	old := setup(t, appwritetest.Options{Version: "1.8.0"}, nil)
	old.srv.Seed(posts, 12, 100)
	p, err = old.client.ListRows(ctx, posts, appwrite.ListQuery{})
	require.NoError(t, err)
	assert.EqualValues(t, -1, p.Total)
}

func TestUpdatedSinceOrderedByUpdatedAtThenSequence(t *testing.T) {
	t.Parallel()
	b := setup(t, appwritetest.Options{}, nil)
	base := time.Date(2026, 3, 26, 10, 0, 0, 0, time.UTC)
	at := func(ms int) string { return base.Add(time.Duration(ms) * time.Millisecond).Format(appwrite.TimeLayout) }
	// Inserted (so sequenced) in an order different from their $updatedAt.
	rows := []struct {
		id string
		ms int
	}{
		{"a", 500}, {"b", -1}, {"c", 0}, {"d", 250}, {"e", 0}, {"f", 250}, {"g", 999},
	}
	for _, r := range rows {
		b.srv.Put(posts, map[string]any{"$id": r.id, "$updatedAt": at(r.ms), "title": r.id})
	}
	// Written with another offset: still the same instant as c and e.
	b.srv.Put(posts, map[string]any{"$id": "h", "$updatedAt": "2026-03-26T12:00:00.000+02:00"})

	p, err := b.client.ListRows(ctxTimeout(t, 10*time.Second), posts, appwrite.ListQuery{
		UpdatedSince: base, OrderByUpdatedAt: true, Limit: 100,
	})
	require.NoError(t, err)
	assert.Equal(t, []string{"c", "e", "h", "d", "f", "a", "g"}, ids(t, toBytes(p.Rows)...))

	var prev time.Time
	for _, r := range p.Rows {
		_, u, _, err := appwrite.RowMeta(r)
		require.NoError(t, err)
		assert.False(t, u.Before(base))
		assert.False(t, u.Before(prev))
		prev = u
	}
	reqs := b.srv.Requests()
	assert.Equal(t, []string{
		`{"method":"greaterThanEqual","attribute":"$updatedAt","values":["2026-03-26T10:00:00.000+00:00"]}`,
		`{"method":"orderAsc","attribute":"$updatedAt"}`,
		`{"method":"orderAsc","attribute":"$sequence"}`,
		`{"method":"limit","values":[100]}`,
	}, reqs[len(reqs)-1].Queries)
}

func TestScanUpdatedSinceByKeyset(t *testing.T) {
	t.Parallel()
	b := setup(t, appwritetest.Options{}, nil)
	putN(b, 30)
	since := b.srv.Now().Add(time.Second)
	b.srv.SetNow(since)
	for _, id := range []string{"row003", "row017", "row029", "row011"} {
		b.srv.Put(posts, map[string]any{"$id": id, "title": "changed"})
	}
	var seen []string
	err := b.client.Scan(ctxTimeout(t, 10*time.Second), posts, appwrite.ListQuery{UpdatedSince: since, Limit: 2},
		func(p appwrite.Page) error {
			seen = append(seen, ids(t, toBytes(p.Rows)...)...)
			return nil
		})
	require.NoError(t, err)
	assert.Equal(t, []string{"row003", "row011", "row017", "row029"}, seen)
}

func TestSelectKeepsMeta(t *testing.T) {
	t.Parallel()
	b := setup(t, appwritetest.Options{}, nil)
	b.srv.Put(posts, map[string]any{"$id": "x", "title": "T", "body": "long", "views": 3})
	p, err := b.client.ListRows(ctxTimeout(t, 10*time.Second), posts, appwrite.ListQuery{Select: []string{"title"}})
	require.NoError(t, err)
	require.Len(t, p.Rows, 1)
	var m map[string]any
	require.NoError(t, json.Unmarshal(p.Rows[0], &m))
	assert.Equal(t, "T", m["title"])
	assert.NotContains(t, m, "body")
	_, _, _, err = appwrite.RowMeta(p.Rows[0])
	require.NoError(t, err)
	reqs := b.srv.Requests()
	assert.Contains(t, reqs[len(reqs)-1].Queries, `{"method":"select","values":["title","$id","$sequence","$updatedAt"]}`)
}

func TestGetRow(t *testing.T) {
	t.Parallel()
	b := setup(t, appwritetest.Options{}, nil)
	b.srv.Put(posts, map[string]any{"$id": "a.b-c_d", "title": "dots are fine"})
	ctx := ctxTimeout(t, 10*time.Second)

	row, err := b.client.GetRow(ctx, posts, "a.b-c_d")
	require.NoError(t, err)
	id, _, seq, err := appwrite.RowMeta(row)
	require.NoError(t, err)
	assert.Equal(t, "a.b-c_d", id)
	assert.Equal(t, "1", seq)

	_, err = b.client.GetRow(ctx, posts, "missing")
	assert.ErrorIs(t, err, appwrite.ErrRowNotFound)
	assert.NotErrorIs(t, err, appwrite.ErrTableNotFound)
}

func toBytes(rows []json.RawMessage) [][]byte {
	out := make([][]byte, len(rows))
	for i, r := range rows {
		out[i] = r
	}
	return out
}
