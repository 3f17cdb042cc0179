package ledger

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/connector/sink"
	"github.com/appwrite-sync/appwrite-sync/internal/pgtext"
)

// requireStorable fails unless s could be stored as it is and is within the limit.
func requireStorable(t testing.TB, s string) {
	t.Helper()
	require.True(t, utf8.ValidString(s), "invalid UTF-8: %q", s)
	require.NotContains(t, s, "\x00")
	require.LessOrEqual(t, len(s), maxErrorText)
}

func poisonItem(id string) sink.Item {
	return sink.Item{Key: key, RowID: id, Seq: 1}
}

// When the state store refuses a batch's settle because of one row's data (here a check
// constraint standing for any data error the cleaning cannot foresee), the failures are
// written one by one: the refused row is dead-lettered with a replacement reason, the other
// rows and the cursor settle as usual.
func TestSettleDeadLettersTheRowTheStateStoreRefuses(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	_, err := b.pool.Exec(ctx, `ALTER TABLE appwrite_sync.sink_retry ADD CONSTRAINT refuse_marked CHECK (last_error NOT LIKE '%refuse-me%')`)
	require.NoError(t, err)
	held, _, _, err := b.q.Acquire(ctx, "s", "A", time.Minute)
	require.NoError(t, err)
	require.True(t, held)
	cursor := Pos{Tx: 1, Seq: 42}
	outs := []Outcome{
		{Item: poisonItem("applied")},
		{Item: poisonItem("refused"), Err: errors.New("timeout, refuse-me"), Backoff: time.Hour, Attempts: 2},
		{Item: poisonItem("dead"), Err: connector.Permanent("bad value", nil), Attempts: 1},
		{Item: poisonItem("later"), Err: errors.New("timeout"), Backoff: time.Hour, Attempts: 1},
	}
	_, err = b.q.Settle(ctx, "s", "A", time.Minute, outs, &cursor)
	require.NoError(t, err)

	var got Pos
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT tx, seq FROM appwrite_sync.sink_cursor WHERE sink = 's'`).Scan(&got.Tx, &got.Seq))
	require.Equal(t, cursor, got, "the cursor moves past the batch")
	ds, err := NewAdmin(b.pool).DeadLetters(ctx, "s", "", 10)
	require.NoError(t, err)
	reasons := map[string]string{}
	for _, d := range ds {
		reasons[d.RowID] = d.Reason
	}
	require.Equal(t, "bad value", reasons["dead"])
	require.Contains(t, reasons["refused"], "error text could not be stored")
	require.Contains(t, reasons["refused"], "SQLSTATE 23514")
	require.NotContains(t, reasons, "later", "a retryable row the state store accepts stays a retry")
	var attempts int
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT attempts FROM appwrite_sync.sink_retry WHERE row_id = 'later' AND dead_at IS NULL`).Scan(&attempts))
	require.Equal(t, 1, attempts)
}

// A quarantine reason or replay result is stored whatever it holds: a refused insert would
// answer 503 to a validly signed request.
func TestQuarantineStoresAnyReason(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	a := NewAdmin(b.pool)
	reason := "x" + strings.Repeat("€", 1000) + "\x00\xff"
	id, err := a.Quarantine(ctx, "hook", reason, map[string]string{"X-Appwrite-Webhook-Events": "e"}, []byte("{"))
	require.NoError(t, err)
	require.NoError(t, a.MarkReplayed(ctx, id, false, "still \x00 not decodable: "+reason))
	require.NoError(t, a.MarkReplayed(ctx, id, true, "ok \x00"))
	qs, err := a.ListQuarantine(ctx, true, false, 10)
	require.NoError(t, err)
	require.Len(t, qs, 1)
	requireStorable(t, qs[0].Reason)
	require.True(t, strings.HasPrefix(qs[0].Reason, "x€€"))
	require.Equal(t, "ok ", qs[0].ReplayResult)
}

// Whatever a sink's error says, settling it succeeds and stores it cleaned: as a dead letter
// (permanent) or a retry. Run by `go test` over the seeds; `go test -fuzz FuzzSettleErrorText`
// explores further.
func FuzzSettleErrorText(f *testing.F) {
	for _, s := range []string{"", "boom", "a\x00b", "\xff\xfe\xfd", "x" + strings.Repeat("€", 700),
		strings.Repeat("ü", 1001), strings.Repeat("\x00", 3000), "😀\xf0\x9f\x98", "'; DROP TABLE x; --"} {
		f.Add(s, true)
		f.Add(s, false)
	}
	b := setupB(f)
	ctx := context.Background()
	held, _, _, err := b.q.Acquire(ctx, "s", "A", time.Hour)
	require.NoError(f, err)
	require.True(f, held)
	n := 0
	f.Fuzz(func(t *testing.T, text string, permanent bool) {
		n++
		it := poisonItem(fmt.Sprint("r", os.Getpid(), "-", n)) // fuzz workers are processes sharing the database
		err := errors.New(text)
		if permanent {
			err = connector.Permanent("rejected", err)
		}
		_, serr := b.q.Settle(ctx, "s", "A", time.Hour, []Outcome{{Item: it, Err: err, Backoff: time.Hour, Attempts: 1}}, nil)
		require.NoError(t, serr)
		var why string
		var dead bool
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT last_error, dead_at IS NOT NULL FROM appwrite_sync.sink_retry WHERE sink = 's' AND row_id = $1`, it.RowID).Scan(&why, &dead))
		requireStorable(t, why)
		require.Equal(t, pgtext.Clean(err.Error(), maxErrorText), why)
		require.Equal(t, permanent, dead)
	})
}
