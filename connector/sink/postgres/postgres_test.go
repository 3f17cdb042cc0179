package postgres

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

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
