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
	"github.com/appwrite-sync/appwrite-sync/migrations"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestConformance(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	pool, err := pgxpool.New(context.Background(), url)
	require.NoError(t, err)
	defer pool.Close()
	sinktest.Run(t, sinktest.Harness{
		Open: func(t *testing.T, m *mapping.Mapping) sink.Sink { return New(pool, m, nil) },
		Read: func(t *testing.T, id string) (sinktest.Stored, bool) {
			var s sinktest.Stored
			err := pool.QueryRow(context.Background(), `SELECT title, views FROM sinktest.posts WHERE id = $1`, id).Scan(&s.Title, &s.Views)
			if err == pgx.ErrNoRows {
				return s, false
			}
			require.NoError(t, err)
			return s, true
		},
		Poison:   func(row map[string]any) { row["views"] = "not a number" },
		StateURL: pgtest.NewMigratedDatabase(t, migrations.Up),
	})
}

// A column whose type changed is an error naming the fix; nothing is altered. Columns the
// mapping gains are added.
func TestStartAddsColumnsAndRefusesTypeChanges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	pool, err := pgxpool.New(ctx, url)
	require.NoError(t, err)
	defer pool.Close()
	_, err = pool.Exec(ctx, `CREATE SCHEMA sinktest; CREATE TABLE sinktest.posts (id text PRIMARY KEY, created_at timestamptz,
        updated_at timestamptz NOT NULL, version_hash bytea NOT NULL DEFAULT '', title text, synced_at timestamptz NOT NULL DEFAULT now())`)
	require.NoError(t, err)
	require.NoError(t, New(pool, sinktest.Mapping(t), nil).Start(ctx))
	var typ string
	require.NoError(t, pool.QueryRow(ctx, `SELECT data_type FROM information_schema.columns WHERE table_schema='sinktest' AND table_name='posts' AND column_name='views'`).Scan(&typ))
	require.Equal(t, "bigint", typ)
	require.NoError(t, pool.QueryRow(ctx, `SELECT data_type FROM information_schema.columns WHERE table_schema='sinktest' AND table_name='posts' AND column_name='version_seq'`).Scan(&typ))
	require.Equal(t, "bigint", typ, "a table from before version_seq gains it")

	_, err = pool.Exec(ctx, `ALTER TABLE sinktest.posts ALTER COLUMN views TYPE text`)
	require.NoError(t, err)
	err = New(pool, sinktest.Mapping(t), nil).Start(ctx)
	require.ErrorContains(t, err, `column "sinktest"."posts".views is text in the warehouse but the mapping says bigint`)
	require.ErrorContains(t, err, "ALTER TABLE")
}

// Two contents at the same updated_at are ordered by the ledger's seq, not by content hash:
// the warehouse takes the version the ledger advanced to, never one it replaced, and the same
// content again whatever its seq (a re-projection, also after the state store was rebuilt).
func TestTiesFollowTheLedgerSeq(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool := startedSink(t)
	at := time.Date(2026, 3, 26, 10, 0, 0, 0, time.UTC)
	item := func(title string, seq int64) sink.Item {
		it := sinktest.Row("tie", at, connector.OpUpsert, title, 1, nil)
		it.Seq = seq
		return it
	}
	held := func() (title string, seq int64) {
		require.NoError(t, pool.QueryRow(ctx, `SELECT title, version_seq FROM sinktest.posts WHERE id = 'tie'`).Scan(&title, &seq))
		return title, seq
	}
	a, b := item("a", 5), item("b", 6)
	if bytes.Compare(a.Version.Hash, b.Version.Hash) < 0 {
		a, b = item("b", 5), item("a", 6) // b, the ledger's later version, hashes lower
	}
	require.NoError(t, s.Apply(ctx, []sink.Item{a}))
	require.NoError(t, s.Apply(ctx, []sink.Item{b}))
	title, seq := held()
	require.Equal(t, stored(b), title, "the version the ledger advanced to, though its hash is lower")
	require.EqualValues(t, 6, seq)
	a.Seq = 4
	require.NoError(t, s.Apply(ctx, []sink.Item{a}))
	title, _ = held()
	require.Equal(t, stored(b), title, "never a version the ledger replaced")
	b.Seq = 1
	require.NoError(t, s.Apply(ctx, []sink.Item{b}))
	_, seq = held()
	require.EqualValues(t, 1, seq, "the same content is rewritten whatever its seq")
}

func stored(it sink.Item) string {
	var r struct {
		Title string `json:"title"`
	}
	_ = json.Unmarshal(it.Row, &r)
	return r.Title
}

// A large batch with bad values at the start, middle and end: exactly those rows fail, every
// other row lands.
// startedSink is a started sink with the conformance mapping on a fresh database.
func startedSink(t *testing.T) (*Sink, *pgxpool.Pool) {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), pgtest.NewDatabase(t))
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	s := New(pool, sinktest.Mapping(t), nil)
	require.NoError(t, s.Start(context.Background()))
	return s, pool
}

func TestLargeBatchIsolatesBadRows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool := startedSink(t)
	_, err := pool.Exec(ctx, `ALTER TABLE sinktest.posts ADD CONSTRAINT views_small CHECK (views < 1000000)`)
	require.NoError(t, err)
	at := time.Date(2026, 3, 26, 10, 0, 0, 0, time.UTC)
	n := 549
	items := make([]sink.Item, n)
	bad := map[int]bool{10: true, 259: true, n - 2: true}
	for i := range items {
		var poison func(map[string]any)
		if bad[i] {
			poison = func(row map[string]any) { row["views"] = 5_000_000 } // passes the mapping, the CHECK rejects it
		}
		items[i] = sinktest.Row(fmt.Sprintf("r%d", i), at, connector.OpUpsert, "t", int64(i), poison)
	}
	err = s.Apply(ctx, items)
	var be *connector.BatchError
	require.ErrorAs(t, err, &be)
	require.Len(t, be.Failed, len(bad))
	for i := range bad {
		require.Contains(t, be.Failed, i)
		require.ErrorContains(t, be.Failed[i], "warehouse rejected", "isolated by bisection in SQL, not by the mapping")
	}
	var landed int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM sinktest.posts`).Scan(&landed))
	require.Equal(t, n-len(bad), landed)
	// Again, now the statement is prepared on this connection: same outcome.
	err = s.Apply(ctx, items)
	require.ErrorAs(t, err, &be)
	require.Len(t, be.Failed, len(bad))
}

// A source row that is not a JSON object fails alone, its reason said once.
func TestRowThatIsNotAnObjectFailsAlone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool := startedSink(t)
	at := time.Date(2026, 3, 26, 10, 0, 0, 0, time.UTC)
	notObject := sinktest.Row("no", at, connector.OpUpsert, "t", 1, nil)
	notObject.Row = []byte(`["not", "an", "object"]`)
	err := s.Apply(ctx, []sink.Item{sinktest.Row("ok", at, connector.OpUpsert, "t", 1, nil), notObject})
	var be *connector.BatchError
	require.ErrorAs(t, err, &be)
	require.Len(t, be.Failed, 1)
	require.True(t, connector.IsPermanent(be.Failed[1]))
	require.ErrorContains(t, be.Failed[1], "source row is not a JSON object: ")
	require.Equal(t, 1, strings.Count(be.Failed[1].Error(), "JSON object"), "said once: %v", be.Failed[1])
	var landed int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM sinktest.posts`).Scan(&landed))
	require.Equal(t, 1, landed)
}

// Every column type of the mapping, including list values with quotes, backslashes, commas,
// braces, "NULL", empty strings and nulls, lands exactly as Postgres stores the same values
// bound one parameter each to a plain INSERT (the oracle table): the unnest statement sends
// numeric values and list values as text and casts them back.
func TestEveryTypeLandsAsBound(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.NewDatabase(t))
	require.NoError(t, err)
	defer pool.Close()
	tables, err := mapping.LoadFile(filepath.Join("..", "..", "..", "mapping", "testdata", "types_ok", "mapping.yaml"), func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	m, err := mapping.New(tables, "wh")
	require.NoError(t, err)
	s := New(pool, m, nil)
	require.NoError(t, s.Start(ctx))
	tbl := m.Tables[0]
	raw, err := os.ReadFile(filepath.Join("..", "..", "..", "mapping", "testdata", "types_ok", "row.json"))
	require.NoError(t, err)
	var base map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // keep 9223372036854775807 exact
	require.NoError(t, dec.Decode(&base))
	tricky := []any{`a"b`, `c\d`, "e,f", "{g}", "NULL", "", " sp ", "ü", nil, `\"`}
	variants := []func(map[string]any){
		func(map[string]any) {},
		func(r map[string]any) { r["labels_n"], r["labels"], r["ids_n"] = tricky, []any{}, []any{nil, nil} },
		func(r map[string]any) { delete(r, "labels"); r["ids"], r["num"] = nil, "-1e-20" },
	}
	_, err = pool.Exec(ctx, `CREATE TABLE wh.oracle (LIKE wh.posts INCLUDING DEFAULTS)`)
	require.NoError(t, err)
	at := time.Date(2026, 3, 27, 11, 30, 0, 456e6, time.UTC)
	var items []sink.Item
	for i, mutate := range variants {
		row := map[string]any{}
		for k, v := range base {
			row[k] = v
		}
		row["$id"] = fmt.Sprint("row", i)
		mutate(row)
		b, err := json.Marshal(row)
		require.NoError(t, err)
		h, err := connector.ContentHash(b)
		require.NoError(t, err)
		it := sink.Item{Key: tbl.Key(), RowID: fmt.Sprint("row", i), Version: connector.Version{UpdatedAt: at, Op: connector.OpUpsert, Hash: h}, Row: b}
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
	require.Len(t, want, len(variants))
	require.Equal(t, want, got)
	require.Contains(t, got["row1"], `"labels_nulls": ["a\"b", "c\\d", "e,f", "{g}", "NULL", "", " sp ", "ü", null, "\\\""]`)
}
