package ledger

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector"
)

// readPage is n reads of new rows id-0 … id-(n-1) at t0, with a $sequence each.
func readPage(prefix string, n int) []connector.Change {
	out := make([]connector.Change, n)
	for i := range out {
		out[i] = read(fmt.Sprintf("%s-%03d", prefix, i), t0, "x")
		out[i].Sequence = fmt.Sprint(i + 1)
	}
	return out
}

// A first backfill's page of new rows is written by COPY, and the ledger then holds exactly
// what the record statement writes: each row once, stamped with the group's transaction and
// its own seq, authoritative, in the delivery log in the page's order.
func TestRecordBatchCopiesNewRows(t *testing.T) {
	t.Parallel()
	b := setupB(t)
	ctx := context.Background()
	page := readPage("new", copyMinRows)
	res, err := b.rec.RecordBatch(ctx, page)
	require.NoError(t, err)
	for i, r := range res {
		require.Equal(t, Recorded, r, page[i].RowID)
	}
	require.EqualValues(t, 1, b.rec.copied.Load(), "the page went through COPY")

	es := readN(t, b.q, Pos{}, len(page))
	require.Len(t, es, len(page))
	for i, e := range es {
		require.Equal(t, page[i].RowID, e.Item.RowID, "log order is the page's order")
		require.Equal(t, key, e.Item.Key)
		require.True(t, e.Item.Version.UpdatedAt.Equal(t0))
		require.Equal(t, connector.OpUpsert, e.Item.Version.Op)
		h, err := connector.ContentHash(page[i].Row)
		require.NoError(t, err)
		require.Equal(t, h, e.Item.Version.Hash)
		require.JSONEq(t, string(page[i].Row), string(e.Item.Row))
		require.Equal(t, es[0].Pos.Tx, e.Pos.Tx, "one transaction")
		if i > 0 {
			require.Greater(t, e.Pos.Seq, es[i-1].Pos.Seq)
		}
	}
	var auth, ties, withSeq int
	var txOK bool
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE authoritative), count(*) FILTER (WHERE tie),
            count(*) FILTER (WHERE sequence IS NOT NULL AND action = 'backfill' AND row IS NULL AND recorded_at <= now()),
            bool_and(tx < pg_current_xact_id())
        FROM appwrite_sync.ledger`).Scan(&auth, &ties, &withSeq, &txOK))
	require.Equal(t, len(page), auth)
	require.Zero(t, ties)
	require.Equal(t, len(page), withSeq)
	require.True(t, txOK)

	// The same page again is all duplicates (the record statement's classification), and the
	// next page, while the probe is on, is not copied.
	res, err = b.rec.RecordBatch(ctx, page)
	require.NoError(t, err)
	for _, r := range res {
		require.Equal(t, Duplicate, r)
	}
	require.EqualValues(t, 1, b.rec.copied.Load())
	require.EqualValues(t, 1, b.rec.copyHeld.Load(), "the sampled rows were held: no COPY tried")
}

// A page holding a row the ledger already has (a webhook recorded it first) cannot be copied:
// the COPY fails as a whole, and the record statement's version guard decides every row, as
// if COPY had never been tried: a newer read advances the row, an older one is stale. The
// table's next pages are then recorded by statement for a while.
func TestRecordBatchCopyConflictFallsBack(t *testing.T) {
	t.Parallel()
	b := setupB(t)
	ctx := context.Background()
	page := readPage("mix", copyMinRows+10)
	older := page[3]
	older.Authoritative, older.Action, older.UpdatedAt = false, "update", t0.Add(-time.Minute)
	newer := ch(page[7].RowID, t0.Add(time.Hour), connector.OpUpsert, "newer")
	for _, c := range []connector.Change{older, newer} {
		res, err := b.rec.RecordResult(ctx, c)
		require.NoError(t, err)
		require.Equal(t, Recorded, res)
	}
	before := readN(t, b.q, Pos{}, 2)
	res, err := b.rec.RecordBatch(ctx, page)
	require.NoError(t, err)
	require.Zero(t, b.rec.copied.Load())
	require.Zero(t, b.rec.copyHeld.Load(), "the sample missed both held rows: the COPY failed")
	for i, r := range res {
		want := Recorded
		if i == 7 {
			want = Stale
		}
		require.Equal(t, want, r, page[i].RowID)
	}
	var title string
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT source::json->>'title' FROM appwrite_sync.ledger WHERE row_id = $1`, newer.RowID).Scan(&title))
	require.Equal(t, "newer", title, "the webhook's newer version stays")
	es := readN(t, b.q, before[len(before)-1].Pos, len(page)-1)
	require.Len(t, es, len(page)-1, "every row but the stale one is in the log once more")

	res, err = b.rec.RecordBatch(ctx, readPage("next", copyMinRows))
	require.NoError(t, err)
	require.Equal(t, Recorded, res[0])
	require.Zero(t, b.rec.copied.Load(), "paused after the conflict")
}
