package postgres

import (
	"context"
	"fmt"
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

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestConformance(t *testing.T) {
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
		StateURL: pgtest.NewDatabase(t),
	})
}

// A column whose type changed is an error naming the fix; nothing is altered. Columns the
// mapping gains are added.
func TestStartAddsColumnsAndRefusesTypeChanges(t *testing.T) {
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

	_, err = pool.Exec(ctx, `ALTER TABLE sinktest.posts ALTER COLUMN views TYPE text`)
	require.NoError(t, err)
	err = New(pool, sinktest.Mapping(t), nil).Start(ctx)
	require.ErrorContains(t, err, `column "sinktest"."posts".views is text in the warehouse but the mapping says bigint`)
	require.ErrorContains(t, err, "ALTER TABLE")
}

// A batch larger than the prepared chunk, with bad values in a prepared chunk and in the
// remainder: exactly those rows fail, every other row lands.
func TestLargeBatchIsolatesBadRows(t *testing.T) {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.NewDatabase(t))
	require.NoError(t, err)
	defer pool.Close()
	s := New(pool, sinktest.Mapping(t), nil)
	require.NoError(t, s.Start(ctx))
	_, err = pool.Exec(ctx, `ALTER TABLE sinktest.posts ADD CONSTRAINT views_small CHECK (views < 1000000)`)
	require.NoError(t, err)
	at := time.Date(2026, 3, 26, 10, 0, 0, 0, time.UTC)
	n := preparedRows*2 + 37
	items := make([]sink.Item, n)
	bad := map[int]bool{10: true, preparedRows + 3: true, n - 2: true}
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
	// Again, now every chunk's statement is prepared on this connection: same outcome.
	err = s.Apply(ctx, items)
	require.ErrorAs(t, err, &be)
	require.Len(t, be.Failed, len(bad))
}
