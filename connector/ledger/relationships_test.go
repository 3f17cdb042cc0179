package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/connector/sink"
	"github.com/appwrite-sync/appwrite-sync/mapping"
)

// relTestMapping: posts link to authors (to-one) and tags (to-many); authors link to
// companies; the warehouse reads author.company.name (two relationships deep).
const relTestMapping = `
tables:
  - {database: main, table: companies}
  - database: main
    table: authors
    relationships: {company: companies}
  - {database: main, table: tags}
  - database: main
    table: posts
    relationships: {author: authors, tags: tags}
    postgres:
      columns:
        title: text
        author_name: {from: author.name, type: text}
        company: {from: author.company.name, type: text}
        tag_names: {from: tags.name, type: "text[]"}
`

func relMapping(t testing.TB) *mapping.Mapping {
	t.Helper()
	f := filepath.Join(t.TempDir(), "mapping.yaml")
	require.NoError(t, os.WriteFile(f, []byte(relTestMapping), 0o600))
	tables, err := mapping.LoadFile(f, func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	m, err := mapping.New(tables, "")
	require.NoError(t, err)
	return m
}

type relBundle struct {
	bundle
	mp  *mapping.Mapping
	rec *Recorder // records links (RecorderOptions.Relations)
	j   *Joiner
}

func setupRel(t *testing.T) relBundle {
	t.Helper()
	b := setup(t)
	m := relMapping(t)
	rec := NewRecorder(b.logPool, RecorderOptions{Metrics: b.m, Relations: m})
	t.Cleanup(rec.Close)
	return relBundle{bundle: b, mp: m, rec: rec, j: NewJoiner(b.logPool, m)}
}

// rel is a change of table main/<table> with the row fields given (plus $id, $updatedAt).
func rel(table, id string, at time.Time, op connector.Op, fields map[string]any) connector.Change {
	row := map[string]any{"$id": id, "$updatedAt": at.Format(time.RFC3339Nano)}
	for k, v := range fields {
		row[k] = v
	}
	b, _ := json.Marshal(row)
	return connector.Change{Key: connector.TableKey{Database: "main", Table: table}, RowID: id, Op: op, UpdatedAt: at, Action: "update", Row: b}
}

func (rb relBundle) record(t *testing.T, chs ...connector.Change) {
	t.Helper()
	res, err := rb.rec.RecordBatch(context.Background(), chs)
	require.NoError(t, err)
	for i, r := range res {
		require.Equal(t, Recorded, r, chs[i].RowID)
	}
}

// logEnd is the position after every entry of the log now.
func (rb relBundle) logEnd(t *testing.T) Pos {
	var p Pos
	var tx int64
	err := rb.pool.QueryRow(context.Background(), `SELECT COALESCE(max(tx)::text::bigint, 0), COALESCE(max(seq), 0) FROM appwrite_sync.ledger`).Scan(&tx, &p.Seq)
	require.NoError(t, err)
	p.Tx = uint64(tx)
	return p
}

// after reads the log after pos and returns the want rows of table, joined, by id. The log
// shows an entry once every older transaction of the cluster ended (other tests' too), so
// it reads until want entries are there.
func (rb relBundle) after(t *testing.T, pos Pos, table string, want int) map[string]map[string]any {
	t.Helper()
	var items []sink.Item
	require.Eventually(t, func() bool {
		entries, err := rb.q.ReadLog(context.Background(), pos, 1_000_000)
		require.NoError(t, err)
		items = items[:0]
		for _, e := range entries {
			if e.Item.Key.Table == table {
				items = append(items, e.Item)
			}
		}
		return len(items) >= want
	}, 10*time.Second, 5*time.Millisecond, "%d rows of %s in the log", want, table)
	require.NoError(t, rb.j.Join(context.Background(), items))
	out := map[string]map[string]any{}
	for _, it := range items {
		var row map[string]any
		require.NoError(t, json.Unmarshal(it.Row, &row))
		out[it.RowID] = row
	}
	require.Len(t, out, want)
	return out
}

// drainFanout runs fan-out steps until the queue is empty and returns the rows re-queued.
func drainFanout(t *testing.T, f *Fanout) int {
	t.Helper()
	n := 0
	for i := 0; ; i++ {
		require.Less(t, i, 10_000, "the fan-out does not end")
		res, err := f.Step(context.Background())
		require.NoError(t, err)
		if res.Idle {
			return n
		}
		n += res.Requeued
	}
}

// name of the joined author of a row ("" when null or absent).
func authorName(row map[string]any) any {
	a, _ := row["author"].(map[string]any)
	if a == nil {
		return nil
	}
	return a["name"]
}

// Links come from the row in every payload shape; values come from the ledger's newest
// version of the related row (an embedded object's other fields are not the truth); unknown
// and deleted rows join as null; a payload without the column keeps the previous links.
func TestJoinEveryPayloadShape(t *testing.T) {
	t.Parallel()
	rb := setupRel(t)
	rb.record(t,
		rel("authors", "a1", t0, connector.OpUpsert, map[string]any{"name": "Ann"}),
		rel("authors", "a2", t0, connector.OpDelete, map[string]any{"name": "Gone"}),
		rel("tags", "t1", t0, connector.OpUpsert, map[string]any{"name": "go"}),
		rel("tags", "t2", t0, connector.OpUpsert, map[string]any{"name": "db"}),
	)
	start := rb.logEnd(t)
	rb.record(t,
		rel("posts", "string", t0, connector.OpUpsert, map[string]any{"author": "a1"}),
		rel("posts", "object", t0, connector.OpUpsert, map[string]any{"author": map[string]any{"$id": "a1", "name": "stale"}}),
		rel("posts", "null", t0, connector.OpUpsert, map[string]any{"author": nil}),
		rel("posts", "unknown", t0, connector.OpUpsert, map[string]any{"author": "nobody"}),
		rel("posts", "deleted", t0, connector.OpUpsert, map[string]any{"author": "a2"}),
		rel("posts", "list", t0, connector.OpUpsert, map[string]any{"tags": []any{"t1", map[string]any{"$id": "t2", "name": "stale"}, "t9"}}),
		rel("posts", "kept", t0, connector.OpUpsert, map[string]any{"author": "a1", "tags": []any{"t2"}}),
	)
	rb.record(t, rel("posts", "kept", t0.Add(time.Second), connector.OpUpsert, map[string]any{"title": "no relationship columns"}))
	got := rb.after(t, start, "posts", 7)
	require.Equal(t, "Ann", authorName(got["string"]))
	require.Equal(t, "Ann", authorName(got["object"]), "the embedded object's name is not the truth")
	require.Nil(t, got["null"]["author"])
	require.Nil(t, got["unknown"]["author"])
	require.Nil(t, got["deleted"]["author"])
	tags := got["list"]["tags"].([]any)
	require.Len(t, tags, 3)
	require.Equal(t, "go", tags[0].(map[string]any)["name"])
	require.Equal(t, "db", tags[1].(map[string]any)["name"])
	require.Nil(t, tags[2], "an unknown tag joins as null (the mapping's list leaves it out)")
	require.Equal(t, "Ann", authorName(got["kept"]), "a payload without the column keeps the previous link")
	require.Equal(t, "db", got["kept"]["tags"].([]any)[0].(map[string]any)["name"])

	// Projected through the mapping, as a sink does.
	posts := rb.mp.Lookup(connector.TableKey{Database: "main", Table: "posts"})
	b, _ := json.Marshal(got["list"])
	r, err := mapping.DecodeRow(b)
	require.NoError(t, err)
	vals, err := posts.PostgresValues(r)
	require.NoError(t, err)
	require.Contains(t, fmt.Sprint(vals), "[go db]")

	// A deleted post keeps its links (a soft-deleted warehouse row keeps its joined values);
	// once its tombstone is swept, they go with it.
	rb.record(t, rel("posts", "object", t0.Add(time.Second), connector.OpDelete, map[string]any{"author": map[string]any{"$id": "a1"}}))
	require.Equal(t, "Ann", authorName(rb.after(t, start, "posts", 7)["object"]))
	sweepUntilGone(t, rb.bundle, "object")
	var links int
	require.NoError(t, rb.pool.QueryRow(context.Background(), `SELECT count(*) FROM appwrite_sync.ledger_links WHERE from_id = 'object'`).Scan(&links))
	require.Zero(t, links, "the swept tombstone's links are removed with it")

	// A new version that drops the author unlinks it.
	rb.record(t, rel("posts", "string", t0.Add(time.Second), connector.OpUpsert, map[string]any{"author": nil}))
	require.Nil(t, rb.after(t, start, "posts", 6)["string"]["author"])
}

// Posts recorded before their author fill in when it arrives; renaming and deleting the
// author re-queues every post (more than one fan-out batch) with the new value.
func TestFanoutPostsBeforeTheirAuthor(t *testing.T) {
	t.Parallel()
	rb := setupRel(t)
	const n = 250
	var posts []connector.Change
	for i := range n {
		posts = append(posts, rel("posts", fmt.Sprintf("p%03d", i), t0, connector.OpUpsert, map[string]any{"author": "a1"}))
	}
	rb.record(t, posts...)
	f := NewFanout(rb.logPool, rb.mp, FanoutOptions{BatchSize: 100, Metrics: rb.m})
	require.Equal(t, 0, drainFanout(t, f), "nothing links to the posts")

	// Rows nothing links to leave the queue a thousand per step.
	var tags []connector.Change
	for i := range 1500 {
		tags = append(tags, rel("tags", fmt.Sprintf("t%04d", i), t0, connector.OpUpsert, map[string]any{"name": "x"}))
	}
	rb.record(t, tags...)
	admin := NewAdmin(rb.pool)
	queued, err := admin.FanoutQueued(context.Background())
	require.NoError(t, err)
	require.EqualValues(t, 1500, queued)
	_, err = f.Step(context.Background())
	require.NoError(t, err)
	queued, err = admin.FanoutQueued(context.Background())
	require.NoError(t, err)
	require.EqualValues(t, 499, queued, "one step removes a thousand at once, then works one")
	require.Equal(t, 0, drainFanout(t, f))
	for v, name := range []string{"Ann", "Ann Renamed"} {
		start := rb.logEnd(t)
		rb.record(t, rel("authors", "a1", t0.Add(time.Duration(v)*time.Second), connector.OpUpsert, map[string]any{"name": name}))
		require.Equal(t, n, drainFanout(t, f))
		got := rb.after(t, start, "posts", n) // every post is back in the log
		for id, row := range got {
			require.Equal(t, name, authorName(row), id)
		}
	}
	start := rb.logEnd(t)
	rb.record(t, rel("authors", "a1", t0.Add(time.Hour), connector.OpDelete, map[string]any{"name": "Ann Renamed"}))
	require.Equal(t, n, drainFanout(t, f))
	got := rb.after(t, start, "posts", n)
	for id, row := range got {
		require.Nil(t, row["author"], id)
	}
	require.Equal(t, float64(3*n), testCounter(t, rb.m.FanoutRequeued))
}

// A company's change reaches the posts of its authors (a chain of two relationships), and a
// tag's change the posts listing it (to-many).
func TestFanoutChainAndToMany(t *testing.T) {
	t.Parallel()
	rb := setupRel(t)
	rb.record(t,
		rel("companies", "c1", t0, connector.OpUpsert, map[string]any{"name": "Acme"}),
		rel("authors", "a1", t0, connector.OpUpsert, map[string]any{"name": "Ann", "company": "c1"}),
		rel("tags", "t1", t0, connector.OpUpsert, map[string]any{"name": "go"}),
		rel("posts", "p1", t0, connector.OpUpsert, map[string]any{"author": "a1", "tags": []any{"t1"}}),
		rel("posts", "p2", t0, connector.OpUpsert, map[string]any{"author": map[string]any{"$id": "a1"}}),
		rel("posts", "p3", t0, connector.OpUpsert, map[string]any{"tags": []any{map[string]any{"$id": "t1"}}}),
	)
	f := NewFanout(rb.logPool, rb.mp, FanoutOptions{})
	drainFanout(t, f)
	start := rb.logEnd(t)
	rb.record(t, rel("companies", "c1", t0.Add(time.Second), connector.OpUpsert, map[string]any{"name": "Acme Corp"}))
	require.Equal(t, 3, drainFanout(t, f), "the author, then its two posts")
	got := rb.after(t, start, "posts", 2)
	for _, id := range []string{"p1", "p2"} {
		company := got[id]["author"].(map[string]any)["company"].(map[string]any)
		require.Equal(t, "Acme Corp", company["name"], id)
	}

	start = rb.logEnd(t)
	rb.record(t, rel("tags", "t1", t0.Add(time.Second), connector.OpUpsert, map[string]any{"name": "golang"}))
	require.Equal(t, 2, drainFanout(t, f))
	got = rb.after(t, start, "posts", 2)
	for _, id := range []string{"p1", "p3"} {
		require.Equal(t, "golang", got[id]["tags"].([]any)[0].(map[string]any)["name"], id)
	}
}

// joinSink keeps, per row, the last row it was given (joined by the engine).
type joinSink struct {
	mu   sync.Mutex
	rows map[string]map[string]any
}

func (s *joinSink) Name() string                          { return "s" }
func (s *joinSink) Handles(k connector.TableKey) bool     { return k.Table == "posts" }
func (s *joinSink) Fingerprint(connector.TableKey) string { return "" }
func (s *joinSink) Start(context.Context) error           { return nil }
func (s *joinSink) Close() error                          { return nil }
func (s *joinSink) Apply(_ context.Context, items []sink.Item) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, it := range items {
		var row map[string]any
		if err := json.Unmarshal(it.Row, &row); err != nil {
			return err
		}
		s.rows[it.RowID] = row
	}
	return nil
}

// named counts the rows whose joined author is name.
func (s *joinSink) named(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, row := range s.rows {
		if authorName(row) == name {
			n++
		}
	}
	return n
}

// A process stopped in the middle of a large fan-out leaves the rest of it queued: the next
// one finishes it, and the sink converges to the new name for every post.
func TestFanoutResumesAfterRestart(t *testing.T) {
	t.Parallel()
	rb := setupRel(t)
	const n, batch = 2000, 500
	var posts []connector.Change
	for i := range n {
		posts = append(posts, rel("posts", fmt.Sprintf("p%04d", i), t0, connector.OpUpsert, map[string]any{"author": "a1"}))
	}
	rb.record(t, rel("authors", "a1", t0, connector.OpUpsert, map[string]any{"name": "Ann"}))
	rb.record(t, posts...)
	s := &joinSink{rows: map[string]map[string]any{}}
	quiet := logrus.New()
	quiet.SetLevel(logrus.ErrorLevel)
	run := func(ctx context.Context, f *Fanout) (wait func()) {
		e := NewEngine(rb.q, []SinkConfig{{Sink: s, BatchSize: 500}}, EngineOptions{Lease: 3 * time.Second, PollInterval: 10 * time.Millisecond,
			Join: rb.j.Join, Log: logrus.NewEntry(quiet)})
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); e.Run(ctx) }()
		go func() { defer wg.Done(); f.Run(ctx) }()
		return wg.Wait
	}
	ctx, stop := context.WithCancel(context.Background())
	wait := run(ctx, NewFanout(rb.logPool, rb.mp, FanoutOptions{BatchSize: batch}))
	require.Eventually(t, func() bool { return s.named("Ann") == n }, 20*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { // the author's own fan-out (it may have found posts) ends
		queued, err := NewAdmin(rb.pool).FanoutQueued(context.Background())
		return err == nil && queued == 0
	}, 20*time.Second, 10*time.Millisecond)

	// The first process takes one batch of the rename's fan-out, then stops.
	first := NewFanout(rb.logPool, rb.mp, FanoutOptions{BatchSize: batch})
	stop()
	wait()
	rb.record(t, rel("authors", "a1", t0.Add(time.Second), connector.OpUpsert, map[string]any{"name": "Ann Renamed"}))
	res, err := first.Step(context.Background())
	require.NoError(t, err)
	require.True(t, res.More)
	require.Equal(t, batch, res.Requeued)
	queued, err := NewAdmin(rb.pool).FanoutQueued(context.Background())
	require.NoError(t, err)
	require.Equal(t, int64(1), queued, "the fan-out is still queued, past its first batch")

	ctx, stop = context.WithCancel(context.Background())
	defer stop()
	wait = run(ctx, NewFanout(rb.logPool, rb.mp, FanoutOptions{BatchSize: batch, Sinks: []string{"s"}}))
	require.Eventually(t, func() bool { return s.named("Ann Renamed") == n }, 20*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool {
		queued, err = NewAdmin(rb.pool).FanoutQueued(context.Background())
		return err == nil && queued == 0
	}, 10*time.Second, 10*time.Millisecond, "the fan-out ends")
	stop()
	wait()
}

func testCounter(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	require.NoError(t, c.Write(&m))
	return m.GetCounter().GetValue()
}

// Rows recorded before their table declared a relationship get their links read again from
// the stored source rows (once: the spec is remembered), and lose them when the relationship
// is removed.
func TestRebuildLinksWhenRelationshipsChange(t *testing.T) {
	t.Parallel()
	rb := setupRel(t)
	plain := NewRecorder(rb.logPool, RecorderOptions{}) // records no links, as before the relationships existed
	t.Cleanup(plain.Close)
	ctx := context.Background()
	var chs []connector.Change
	for i := range 2500 { // more than one page
		chs = append(chs, rel("posts", fmt.Sprintf("p%04d", i), t0, connector.OpUpsert, map[string]any{"author": map[string]any{"$id": "a1"}}))
	}
	chs = append(chs, rel("authors", "a1", t0, connector.OpUpsert, map[string]any{"name": "Ann"}))
	_, err := plain.RecordBatch(ctx, chs)
	require.NoError(t, err)
	start := Pos{}
	require.Nil(t, authorName(rb.after(t, start, "posts", 2500)["p0042"]), "no links yet")

	admin := NewAdmin(rb.pool)
	n, err := admin.RebuildLinks(ctx, rb.mp)
	require.NoError(t, err)
	require.EqualValues(t, 2501, n, "posts and authors declare relationships")
	got := rb.after(t, start, "posts", 2500)
	for id, row := range got {
		require.Equal(t, "Ann", authorName(row), id)
	}
	n, err = admin.RebuildLinks(ctx, rb.mp)
	require.NoError(t, err)
	require.Zero(t, n, "nothing changed since")

	f := filepath.Join(t.TempDir(), "none.yaml")
	require.NoError(t, os.WriteFile(f, []byte("tables:\n  - {database: main, table: posts, postgres: {columns: {title: text}}}\n  - {database: main, table: authors}\n"), 0o600))
	tables, err := mapping.LoadFile(f, func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	none, err := mapping.New(tables, "")
	require.NoError(t, err)
	_, err = admin.RebuildLinks(ctx, none)
	require.NoError(t, err)
	var links int
	require.NoError(t, rb.pool.QueryRow(ctx, `SELECT count(*) FROM appwrite_sync.ledger_links`).Scan(&links))
	require.Zero(t, links)
}

// downSink is unavailable until up is set, counting the applies it refused.
type downSink struct {
	joinSink
	up      atomic.Bool
	refused atomic.Int32
}

func (s *downSink) Apply(ctx context.Context, items []sink.Item) error {
	if !s.up.Load() {
		s.refused.Add(1)
		return fmt.Errorf("%w: test outage", connector.ErrSinkUnavailable)
	}
	return s.joinSink.Apply(ctx, items)
}

// An unavailable sink pauses with the batch held in place, joined or not: nothing is written
// to the retry table and no attempt counts against the rows (the join hook must not turn the
// pause into per-row retries).
func TestEngineWithJoinPausesInPlaceWhileTheSinkIsDown(t *testing.T) {
	t.Parallel()
	rb := setupRel(t)
	rb.record(t, rel("authors", "a1", t0, connector.OpUpsert, map[string]any{"name": "Ann"}),
		rel("posts", "p1", t0, connector.OpUpsert, map[string]any{"author": "a1"}))
	s := &downSink{joinSink: joinSink{rows: map[string]map[string]any{}}}
	quiet := logrus.New()
	quiet.SetLevel(logrus.ErrorLevel)
	e := NewEngine(rb.q, []SinkConfig{{Sink: s}}, EngineOptions{Lease: 3 * time.Second, PollInterval: 10 * time.Millisecond,
		MaxBackoff: 50 * time.Millisecond, Join: rb.j.Join, Log: logrus.NewEntry(quiet)})
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Run(ctx); close(done) }()
	defer func() { stop(); <-done }()
	require.Eventually(t, func() bool { return s.refused.Load() >= 3 }, 10*time.Second, 5*time.Millisecond)
	var retries int
	require.NoError(t, rb.pool.QueryRow(context.Background(), `SELECT count(*) FROM appwrite_sync.sink_retry`).Scan(&retries))
	require.Zero(t, retries, "a paused sink's batch waits in place")
	s.up.Store(true)
	require.Eventually(t, func() bool { return s.named("Ann") == 1 }, 10*time.Second, 5*time.Millisecond)
}
