// Package sinktest is the conformance suite every sink must pass (like river's
// riverdrivertest). It drives a sink directly (idempotence, version order, deletes of unseen
// rows, restart) and through the real ledger and delivery engine (late events after a delete,
// a poisoned row in a batch), against a real Postgres state store.
package sinktest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/connector/ledger"
	"github.com/appwrite-sync/appwrite-sync/connector/sink"
	"github.com/appwrite-sync/appwrite-sync/internal/yamlnode"
	"github.com/appwrite-sync/appwrite-sync/mapping"
	"github.com/appwrite-sync/appwrite-sync/migrations"
)

// Key is the table every case writes.
var Key = connector.TableKey{Database: "main", Table: "posts"}

// MappingYAML maps main/posts into both sinks with a text and a bigint field.
const MappingYAML = `
- database: main
  table: posts
  meilisearch:
    index: posts
    fields: [title, views]
    filterable: [views]
  postgres:
    table: posts
    columns:
      title: text
      views: bigint
`

// Mapping parses MappingYAML.
func Mapping(t testing.TB) *mapping.Mapping {
	t.Helper()
	return ParseMapping(t, "sinktest", MappingYAML)
}

// ParseMapping parses a `tables:` list (no environment variables) into a mapping whose sinks
// write to the schema name.
func ParseMapping(t testing.TB, name, text string) *mapping.Mapping {
	t.Helper()
	var root yaml.Node
	require.NoError(t, yaml.Unmarshal([]byte(text), &root))
	d := yamlnode.NewNode(name+".yaml", &root, func(string) (string, bool) { return "", false })
	tables := mapping.ParseTables(d, root.Content[0], "tables")
	require.NoError(t, d.Errs.Err())
	m, err := mapping.New(tables, name)
	require.NoError(t, err)
	return m
}

// Stored is what a sink holds for a row.
type Stored struct {
	Title string
	Views int64
}

// Harness adapts one sink to the suite.
type Harness struct {
	// Open returns a sink for the mapping, writing to the same destination on every call
	// (a restart is Close + Open). It must not call Start.
	Open func(t *testing.T, m *mapping.Mapping) sink.Sink
	// Read returns what the destination holds for row id (ok false when absent). It may be
	// called before the sink's asynchronous work settled: the suite polls.
	Read func(t *testing.T, id string) (Stored, bool)
	// Poison changes a source row so that this sink rejects it permanently.
	Poison func(row map[string]any)
	// StateURL is a migrated-or-empty Postgres database for the ledger (engine cases).
	StateURL string
}

var t0 = time.Date(2026, 3, 26, 10, 0, 0, 0, time.UTC)

// Row builds a source row and its item.
func Row(id string, at time.Time, op connector.Op, title string, views int64, mutate func(map[string]any)) sink.Item {
	row := map[string]any{"$id": id, "$databaseId": "main", "$tableId": "posts", "$sequence": "1",
		"$createdAt": "2026-01-01T00:00:00.000+00:00", "$updatedAt": at.Format("2006-01-02T15:04:05.000+00:00"),
		"$permissions": []string{`read("any")`}, "title": title, "views": views}
	if mutate != nil {
		mutate(row)
	}
	b, _ := json.Marshal(row)
	h, _ := connector.ContentHash(b)
	return sink.Item{Key: Key, RowID: id, Version: connector.Version{UpdatedAt: at, Op: op, Hash: h}, Row: b}
}

func change(it sink.Item) connector.Change {
	action := "update"
	if it.Version.Op == connector.OpDelete {
		action = "delete"
	}
	return connector.Change{Key: it.Key, RowID: it.RowID, Op: it.Version.Op, UpdatedAt: it.Version.UpdatedAt, Action: action, Row: it.Row}
}

// readChange is it as a backfill or reconcile records it: the row read from the REST API.
func readChange(it sink.Item) connector.Change {
	c := change(it)
	c.Action, c.Authoritative = "backfill", true
	return c
}

// tiePair returns two items of row id at t0 with different titles, the first's content hash
// below the second's when lowFirst, above it otherwise.
func tiePair(id string, lowFirst bool) (sink.Item, sink.Item) {
	a, b := Row(id, t0, connector.OpUpsert, "left", 1, nil), Row(id, t0, connector.OpUpsert, "right", 2, nil)
	if (bytes.Compare(a.Version.Hash, b.Version.Hash) < 0) != lowFirst {
		a, b = b, a
	}
	return a, b
}

func stored(it sink.Item) Stored {
	var r struct {
		Title string `json:"title"`
		Views int64  `json:"views"`
	}
	_ = json.Unmarshal(it.Row, &r)
	return Stored{r.Title, r.Views}
}

func (h Harness) eventually(t *testing.T, id string, want Stored, present bool) {
	t.Helper()
	var got Stored
	var ok bool
	require.Eventually(t, func() bool {
		got, ok = h.Read(t, id)
		return ok == present && (!present || got == want)
	}, 15*time.Second, 20*time.Millisecond, "row %s: want present=%v %+v, got present=%v %+v", id, present, want, ok, got)
}

func (h Harness) start(t *testing.T, m *mapping.Mapping) sink.Sink {
	s := h.Open(t, m)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, s.Start(ctx))
	require.NoError(t, s.Start(ctx), "Start must be idempotent")
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// Run runs every case.
func Run(t *testing.T, h Harness) {
	ctx := context.Background()
	m := Mapping(t)

	t.Run("UpsertTwiceIsIdempotent", func(t *testing.T) {
		s := h.start(t, m)
		it := Row("twice", t0, connector.OpUpsert, "a", 1, nil)
		require.NoError(t, s.Apply(ctx, []sink.Item{it}))
		require.NoError(t, s.Apply(ctx, []sink.Item{it}))
		h.eventually(t, "twice", Stored{"a", 1}, true)
	})
	t.Run("OlderVersionNeverOverwritesNewer", func(t *testing.T) {
		s := h.start(t, m)
		newer := Row("ooo.1", t0.Add(time.Second), connector.OpUpsert, "new", 2, nil)
		older := Row("ooo.1", t0, connector.OpUpsert, "old", 1, nil)
		require.NoError(t, s.Apply(ctx, []sink.Item{newer}))
		h.eventually(t, "ooo.1", Stored{"new", 2}, true)
		require.NoError(t, s.Apply(ctx, []sink.Item{older}))
		time.Sleep(100 * time.Millisecond)
		h.eventually(t, "ooo.1", Stored{"new", 2}, true)
	})
	t.Run("DeleteOfNeverSeenRowSucceeds", func(t *testing.T) {
		s := h.start(t, m)
		require.NoError(t, s.Apply(ctx, []sink.Item{Row("never-seen.x", t0, connector.OpDelete, "z", 0, nil)}))
		h.eventually(t, "never-seen.x", Stored{}, false)
	})
	t.Run("DeleteRemovesAndRecreateRestores", func(t *testing.T) {
		s := h.start(t, m)
		require.NoError(t, s.Apply(ctx, []sink.Item{Row("del-1", t0, connector.OpUpsert, "a", 1, nil)}))
		h.eventually(t, "del-1", Stored{"a", 1}, true)
		require.NoError(t, s.Apply(ctx, []sink.Item{Row("del-1", t0, connector.OpDelete, "a", 1, nil)}))
		h.eventually(t, "del-1", Stored{}, false)
		require.NoError(t, s.Apply(ctx, []sink.Item{Row("del-1", t0.Add(time.Second), connector.OpUpsert, "b", 2, nil)}))
		h.eventually(t, "del-1", Stored{"b", 2}, true)
	})
	t.Run("WhereMismatchIsADelete", func(t *testing.T) {
		// A mapping with `where`: a row that stops matching leaves the sink, and comes back.
		wm := ParseMapping(t, "sinktest", `
- database: main
  table: posts
  where: {title: {not: hidden}}
  meilisearch: {index: posts, fields: [title, views], filterable: [views]}
  postgres: {table: posts, columns: {title: text, views: bigint}}
`)
		s := h.start(t, wm)
		require.NoError(t, s.Apply(ctx, []sink.Item{Row("w-1", t0, connector.OpUpsert, "shown", 1, nil)}))
		h.eventually(t, "w-1", Stored{"shown", 1}, true)
		require.NoError(t, s.Apply(ctx, []sink.Item{Row("w-1", t0.Add(time.Second), connector.OpUpsert, "hidden", 2, nil)}))
		h.eventually(t, "w-1", Stored{}, false)
		require.NoError(t, s.Apply(ctx, []sink.Item{Row("w-1", t0.Add(2*time.Second), connector.OpUpsert, "again", 3, nil)}))
		h.eventually(t, "w-1", Stored{"again", 3}, true)
	})
	t.Run("PartialBatchFailureIsolatesTheBadRow", func(t *testing.T) {
		s := h.start(t, m)
		items := []sink.Item{
			Row("pb-1", t0, connector.OpUpsert, "a", 1, nil),
			Row("pb-bad", t0, connector.OpUpsert, "b", 2, h.Poison),
			Row("pb-3", t0, connector.OpUpsert, "c", 3, nil),
		}
		err := s.Apply(ctx, items)
		be, ok := err.(*connector.BatchError)
		require.True(t, ok, "want *connector.BatchError, got %T: %v", err, err)
		require.Len(t, be.Failed, 1)
		require.Contains(t, be.Failed, 1)
		h.eventually(t, "pb-1", Stored{"a", 1}, true)
		h.eventually(t, "pb-3", Stored{"c", 3}, true)
		h.eventually(t, "pb-bad", Stored{}, false)
	})
	t.Run("RestartKeepsDataAndContinues", func(t *testing.T) {
		s := h.start(t, m)
		require.NoError(t, s.Apply(ctx, []sink.Item{Row("rs-1", t0, connector.OpUpsert, "a", 1, nil)}))
		require.NoError(t, s.Close())
		require.NoError(t, s.Close(), "Close must be idempotent")
		s2 := h.start(t, m)
		h.eventually(t, "rs-1", Stored{"a", 1}, true)
		require.NoError(t, s2.Apply(ctx, []sink.Item{Row("rs-1", t0.Add(time.Second), connector.OpUpsert, "b", 2, nil)}))
		h.eventually(t, "rs-1", Stored{"b", 2}, true)
	})
	t.Run("ThroughTheEngine", func(t *testing.T) {
		if h.StateURL == "" {
			t.Skip("no state store")
		}
		runEngine(t, h, m)
	})
}

// Deliver runs the real delivery engine for sc over the state store pool, polling often, and
// returns a recorder that wakes it: changes recorded through it reach sc.Sink. stop ends the
// engine and closes the recorder; call it before closing the sink or the pool.
func Deliver(pool *pgxpool.Pool, sc ledger.SinkConfig) (rec *ledger.Recorder, stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	log := logrus.New()
	log.SetLevel(logrus.ErrorLevel)
	eng := ledger.NewEngine(ledger.NewQueue(pool), []ledger.SinkConfig{sc},
		ledger.EngineOptions{Lease: 10 * time.Second, PollInterval: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, Log: logrus.NewEntry(log)})
	rec = ledger.NewRecorder(pool, ledger.RecorderOptions{Notify: eng.Notify})
	done := make(chan struct{})
	go func() { eng.Run(ctx); close(done) }()
	return rec, func() { cancel(); <-done; rec.Close() }
}

// runEngine records changes in a real ledger and lets the real engine deliver them: a late
// older update after a delete never resurrects the row; a poisoned row is dead-lettered while
// the rest lands; many updates to one row collapse.
func runEngine(t *testing.T, h Harness, m *mapping.Mapping) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := migrations.Up(ctx, h.StateURL)
	require.NoError(t, err)
	pool, err := ledger.OpenPool(ctx, h.StateURL, 8)
	require.NoError(t, err)
	defer pool.Close()
	s := h.Open(t, m)
	defer s.Close()
	// One batch in flight: a row recorded last is applied last (see delivered below).
	rec, stop := Deliver(pool, ledger.SinkConfig{Sink: s, BatchSize: 50, Workers: 1})
	defer stop()

	record := func(it sink.Item) ledger.Result {
		r, err := rec.RecordResult(ctx, change(it))
		require.NoError(t, err)
		return r
	}
	require.Equal(t, ledger.Recorded, record(Row("e-1", t0, connector.OpUpsert, "a", 1, nil)))
	require.Equal(t, ledger.Recorded, record(Row("e-1", t0.Add(time.Second), connector.OpDelete, "a", 1, nil)))
	require.Equal(t, ledger.Stale, record(Row("e-1", t0.Add(500*time.Millisecond), connector.OpUpsert, "late", 9, nil)))
	require.Equal(t, ledger.Duplicate, record(Row("e-1", t0.Add(time.Second), connector.OpDelete, "a", 1, nil)))
	for i := 0; i < 30; i++ {
		record(Row("e-hot", t0.Add(time.Duration(i)*time.Millisecond), connector.OpUpsert, fmt.Sprint("v", i), int64(i), nil))
	}
	record(Row("e-good", t0, connector.OpUpsert, "g", 7, nil))
	record(Row("e-bad", t0, connector.OpUpsert, "b", 8, h.Poison))
	h.eventually(t, "e-1", Stored{}, false)
	h.eventually(t, "e-hot", Stored{"v29", 29}, true)
	h.eventually(t, "e-good", Stored{"g", 7}, true)
	admin := ledger.NewAdmin(pool)
	require.Eventually(t, func() bool {
		ds, err := admin.DeadLetters(ctx, s.Name(), "", 10)
		return err == nil && len(ds) == 1 && ds[0].RowID == "e-bad" && ds[0].Reason != ""
	}, 15*time.Second, 20*time.Millisecond, "the poisoned row must be dead-lettered with a reason")
	h.eventually(t, "e-bad", Stored{}, false)

	// delivered waits until everything recorded so far has been applied: a marker row recorded
	// last is in the sink (the engine applies the log in order, one batch at a time). A
	// new row, so of the present: the horizon refuses a webhook's new row dated before the
	// tombstones swept from its table.
	markers := 0
	delivered := func() {
		t.Helper()
		markers++
		id := fmt.Sprint("marker-", markers)
		require.Equal(t, ledger.Recorded, record(Row(id, time.Now().UTC().Truncate(time.Millisecond), connector.OpUpsert, id, 0, nil)))
		h.eventually(t, id, Stored{id, 0}, true)
	}

	// A row read from the REST API wins the tie at its $updatedAt in the ledger, and the sink
	// follows the ledger, whichever content hashes higher; a late webhook does not displace it.
	for _, lowFirst := range []bool{true, false} {
		id := fmt.Sprint("tie-after-", lowFirst)
		hook, truth := tiePair(id, lowFirst)
		require.Equal(t, ledger.Recorded, record(hook))
		h.eventually(t, id, stored(hook), true)
		r, err := rec.RecordResult(ctx, readChange(truth))
		require.NoError(t, err)
		require.Equal(t, ledger.Recorded, r)
		h.eventually(t, id, stored(truth), true)
		require.Equal(t, ledger.Stale, record(hook), "a late webhook at the same $updatedAt")
		delivered()
		h.eventually(t, id, stored(truth), true)

		id = fmt.Sprint("tie-before-", lowFirst)
		hook, truth = tiePair(id, lowFirst)
		r, err = rec.RecordResult(ctx, readChange(truth))
		require.NoError(t, err)
		require.Equal(t, ledger.Recorded, r)
		require.Equal(t, ledger.Stale, record(hook))
		delivered()
		h.eventually(t, id, stored(truth), true)
	}

	// A captured upsert replayed after the row's tombstone was swept does not resurrect it; the
	// row re-created after its delete does come back.
	require.Equal(t, ledger.Recorded, record(Row("swept", t0, connector.OpUpsert, "v1", 1, nil)))
	require.Equal(t, ledger.Recorded, record(Row("swept", t0.Add(time.Second), connector.OpDelete, "v1", 1, nil)))
	h.eventually(t, "swept", Stored{}, false)
	require.Eventually(t, func() bool {
		// Hourly sweeps with a retention of 0: the first raises the horizon, the next removes
		// the tombstone once the engine has settled it.
		_, err := admin.SweepTombstones(ctx, 0)
		require.NoError(t, err)
		_, err = pool.Exec(ctx, `UPDATE appwrite_sync.ledger_horizon SET raised_at = raised_at - interval '1 hour'`)
		require.NoError(t, err)
		var n int
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM appwrite_sync.ledger WHERE row_id = 'swept'`).Scan(&n))
		return n == 0
	}, 15*time.Second, 20*time.Millisecond, "the tombstone must be swept")
	require.Equal(t, ledger.Stale, record(Row("swept", t0, connector.OpUpsert, "v1", 1, nil)), "the replay")
	delivered()
	h.eventually(t, "swept", Stored{}, false)
	require.Equal(t, ledger.Recorded, record(Row("swept", t0.Add(2*time.Second), connector.OpUpsert, "v3", 3, nil)), "the re-create")
	h.eventually(t, "swept", Stored{"v3", 3}, true)
}
