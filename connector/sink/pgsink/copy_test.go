package pgsink

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/connector/sink"
	"github.com/appwrite-sync/appwrite-sync/connector/sink/sinktest"
	"github.com/appwrite-sync/appwrite-sync/internal/pgtest"
	"github.com/appwrite-sync/appwrite-sync/mapping"
)

// A batch of new rows is written by COPY, and every type COPY takes lands exactly as the same
// values bound to a plain INSERT (the oracle table): the types_ok mapping without the
// columns sent as text and cast (numeric, lists), which go to the upsert.
func TestNewRowsAreCopiedAsBound(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.NewDatabase(t))
	require.NoError(t, err)
	defer pool.Close()
	text, err := os.ReadFile(filepath.Join("..", "..", "..", "mapping", "testdata", "types_ok", "mapping.yaml"))
	require.NoError(t, err)
	var keep []string
	for _, l := range strings.Split(string(text), "\n") {
		if !strings.Contains(l, "numeric") && !strings.Contains(l, "[]") {
			keep = append(keep, l)
		}
	}
	path := filepath.Join(t.TempDir(), "mapping.yaml")
	require.NoError(t, os.WriteFile(path, []byte(strings.Join(keep, "\n")), 0o600))
	tables, err := mapping.LoadFile(path, func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	m, err := mapping.New(tables, "wh")
	require.NoError(t, err)
	s := New(pool, m, nil)
	require.NoError(t, s.Start(ctx))
	tbl := m.Tables[0]
	require.True(t, s.upsertStatement(tbl).copyable())
	raw, err := os.ReadFile(filepath.Join("..", "..", "..", "mapping", "testdata", "types_ok", "row.json"))
	require.NoError(t, err)
	var base map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	require.NoError(t, dec.Decode(&base))
	_, err = pool.Exec(ctx, `CREATE TABLE wh.oracle (LIKE wh.posts INCLUDING DEFAULTS)`)
	require.NoError(t, err)
	at := time.Date(2026, 3, 27, 11, 30, 0, 456e6, time.UTC)
	var items []sink.Item
	for i := range copyMinRows {
		row := map[string]any{}
		for k, v := range base {
			row[k] = v
		}
		row["$id"] = fmt.Sprint("row", i)
		if i%2 == 1 { // nulls and missing values too
			row["s"], row["doc"] = nil, nil
			delete(row, "ts")
		}
		b, err := json.Marshal(row)
		require.NoError(t, err)
		h, err := connector.ContentHash(b)
		require.NoError(t, err)
		it := sink.Item{Key: tbl.Key(), RowID: fmt.Sprint("row", i), Seq: int64(i + 1), Version: connector.Version{UpdatedAt: at, Op: connector.OpUpsert, Hash: h}, Row: b}
		items = append(items, it)

		r, err := mapping.DecodeRow(b)
		require.NoError(t, err)
		vals, err := tbl.PostgresValues(r)
		require.NoError(t, err)
		created, _ := r.CreatedAt()
		args := append([]any{it.RowID, created, at, h, it.Seq}, vals...)
		cols := []string{"id", "created_at", "updated_at", "version_hash", "version_seq"}
		ph := []string{"$1", "$2", "$3", "$4", "$5"}
		for j, c := range tbl.PG.Columns {
			cols = append(cols, pgx.Identifier{c.Name}.Sanitize())
			ph = append(ph, fmt.Sprint("$", j+6))
		}
		_, err = pool.Exec(ctx, fmt.Sprintf("INSERT INTO wh.oracle (%s) VALUES (%s)", strings.Join(cols, ", "), strings.Join(ph, ", ")), args...)
		require.NoError(t, err)
	}
	require.NoError(t, s.Apply(ctx, items))
	require.EqualValues(t, 1, s.copied.Load(), "the batch went through COPY")
	read := func(table string) map[string]string {
		rows, err := pool.Query(ctx, fmt.Sprintf(`SELECT id, (to_jsonb(t) - 'synced_at')::text FROM wh.%s t`, table))
		require.NoError(t, err)
		out := map[string]string{}
		for rows.Next() {
			var id, doc string
			require.NoError(t, rows.Scan(&id, &doc))
			out[id] = doc
		}
		require.NoError(t, rows.Err())
		return out
	}
	want, got := read("oracle"), read("posts")
	require.Len(t, want, copyMinRows)
	require.Equal(t, want, got)
	var synced int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM wh.posts WHERE synced_at > now() - interval '1 minute'`).Scan(&synced))
	require.Equal(t, copyMinRows, synced)
}

// A batch holding rows the warehouse has is written by the upsert, whose version guard
// decides each row: newer versions land, an older one does not. Whether the sampled look-up
// or the failed COPY finds the held row, the outcome is the upsert's, and the table's next
// batches skip COPY.
func TestHeldRowsGoToTheUpsert(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	at := time.Date(2026, 3, 26, 10, 0, 0, 0, time.UTC)
	batch := func(prefix string, n int, ua time.Time, title string) []sink.Item {
		out := make([]sink.Item, n)
		for i := range out {
			out[i] = sinktest.Row(fmt.Sprintf("%s%03d", prefix, i), ua, connector.OpUpsert, title, int64(i), nil)
			out[i].Seq = int64(i + 1)
		}
		return out
	}
	titles := func(pool *pgxpool.Pool) map[string]string {
		rows, err := pool.Query(ctx, `SELECT id, title FROM sinktest.posts`)
		require.NoError(t, err)
		out := map[string]string{}
		for rows.Next() {
			var id, title string
			require.NoError(t, rows.Scan(&id, &title))
			out[id] = title
		}
		require.NoError(t, rows.Err())
		return out
	}
	for _, tc := range []struct {
		name string
		held int // the row already in the warehouse: sampled (first) or not
	}{{"sampled", 0}, {"missed by the sample", 3}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, pool := startedSink(t)
			items := batch("r", copyMinRows+10, at, "new")
			newer := items[tc.held]
			newer.Version.UpdatedAt, newer.Row = at.Add(time.Hour), sinktest.Row(newer.RowID, at.Add(time.Hour), connector.OpUpsert, "newer", 1, nil).Row
			older := sinktest.Row(items[7].RowID, at.Add(-time.Hour), connector.OpUpsert, "older", 1, nil)
			require.NoError(t, s.Apply(ctx, []sink.Item{newer, older}))
			require.NoError(t, s.Apply(ctx, items))
			require.Zero(t, s.copied.Load())
			got := titles(pool)
			require.Len(t, got, len(items))
			for i, it := range items {
				want := "new"
				if i == tc.held {
					want = "newer"
				}
				require.Equal(t, want, got[it.RowID], it.RowID)
			}
			require.NoError(t, s.Apply(ctx, batch("n", copyMinRows, at, "next")))
			require.Zero(t, s.copied.Load(), "paused after a refusal")
			require.Len(t, titles(pool), len(items)+copyMinRows)
		})
	}
}
