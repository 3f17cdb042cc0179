package ledger

import (
	"context"
	"fmt"
	"math/rand"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/connector/sink"
)

// fakeSink is shared by every engine of a test (like one destination behind two replicas). It
// fails the test when a row is in two applies at once, keeps the newest version per row, and
// can fail rows or whole batches on request.
type fakeSink struct {
	t        *testing.T
	mu       sync.Mutex
	inFlight map[string]bool
	held     map[string]int64 // row -> seq applied
	writes   map[string]int
	applies  int
	delay    time.Duration
	down     bool              // whole batches fail as unavailable
	poison   map[string]bool   // rows rejected permanently
	why      map[string]string // the rejection's text for a poison row (default "poison row")
	overlap  int
}

func newFakeSink(t *testing.T) *fakeSink {
	return &fakeSink{t: t, inFlight: map[string]bool{}, held: map[string]int64{}, writes: map[string]int{}, poison: map[string]bool{}, why: map[string]string{}}
}

func (f *fakeSink) Name() string                          { return "s" }
func (f *fakeSink) Handles(k connector.TableKey) bool     { return k.Table != "ignored" }
func (f *fakeSink) Fingerprint(connector.TableKey) string { return "" }
func (f *fakeSink) Start(context.Context) error           { return nil }
func (f *fakeSink) Close() error                          { return nil }
func (f *fakeSink) snapshot() (map[string]int64, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return copyMap(f.held), f.overlap
}
func copyMap(m map[string]int64) map[string]int64 {
	o := make(map[string]int64, len(m))
	for k, v := range m {
		o[k] = v
	}
	return o
}
func (f *fakeSink) set(fn func(f *fakeSink)) { f.mu.Lock(); fn(f); f.mu.Unlock() }

func (f *fakeSink) Apply(ctx context.Context, items []sink.Item) error {
	f.mu.Lock()
	if f.down {
		f.mu.Unlock()
		return fmt.Errorf("%w: test outage", connector.ErrSinkUnavailable)
	}
	f.applies++
	for _, it := range items {
		if f.inFlight[it.RowID] {
			f.overlap++
		}
		f.inFlight[it.RowID] = true
	}
	delay := f.delay
	f.mu.Unlock()
	time.Sleep(delay)
	f.mu.Lock()
	defer f.mu.Unlock()
	failed := map[int]error{}
	for i, it := range items {
		delete(f.inFlight, it.RowID)
		if f.poison[it.RowID] {
			why := "poison row"
			if w, ok := f.why[it.RowID]; ok {
				why = w
			}
			failed[i] = connector.Permanent(why, nil)
			continue
		}
		if it.Key.Table == "ignored" {
			f.t.Errorf("row %s of a table the sink does not handle was sent", it.RowID)
		}
		if it.Seq > f.held[it.RowID] {
			f.held[it.RowID] = it.Seq
		}
		f.writes[it.RowID]++
	}
	if len(failed) > 0 {
		return &connector.BatchError{Failed: failed}
	}
	return nil
}

func testEngine(q *Queue, s sink.Sink, batch int) *Engine {
	log := logrus.New()
	log.SetLevel(logrus.ErrorLevel)
	return NewEngine(q, []SinkConfig{{Sink: s, BatchSize: batch, Workers: 3}},
		EngineOptions{Lease: 3 * time.Second, PollInterval: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, Log: logrus.NewEntry(log)})
}

// newestSeqs is the ground truth: the ledger's newest seq per handled row.
func newestSeqs(t *testing.T, b bundle) map[string]int64 {
	rows, err := b.pool.Query(context.Background(), `SELECT row_id, seq FROM appwrite_sync.ledger WHERE table_key <> 'main/ignored'`)
	require.NoError(t, err)
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var id string
		var seq int64
		require.NoError(t, rows.Scan(&id, &seq))
		out[id] = seq
	}
	return out
}

// Two replicas deliver one sink while updates to a few hot rows keep arriving: no row is ever
// in two applies at once, one replica stopping hands over to the other, and the sink ends
// with every row's newest version.
func TestEngineReplicasConvergeWithoutOverlap(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	f := newFakeSink(t)
	f.delay = 3 * time.Millisecond
	ctx1, stop1 := context.WithCancel(ctx)
	ctx2, stop2 := context.WithCancel(ctx)
	defer stop1()
	defer stop2()
	e1, e2 := testEngine(b.q, f, 20), testEngine(b.q, f, 20)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); e1.Run(ctx1) }()
	go func() { defer wg.Done(); e2.Run(ctx2) }()

	rng := rand.New(rand.NewSource(7))
	ignored := connector.TableKey{Database: "main", Table: "ignored"}
	for i := 0; i < 600; i++ {
		id := fmt.Sprint("hot", rng.Intn(15))
		if i%3 == 0 {
			id = fmt.Sprint("cold", i)
		}
		c := ch(id, t0.Add(time.Duration(i)*time.Millisecond), connector.OpUpsert, fmt.Sprint("v", i))
		if i%50 == 0 {
			c.Key, c.RowID = ignored, fmt.Sprint("x", i)
		}
		require.NoError(t, b.rec.Record(ctx, c))
		if i == 300 {
			stop1() // the first replica goes away mid-stream; the other takes over
		}
	}
	want := newestSeqs(t, b)
	require.Eventually(t, func() bool {
		held, _ := f.snapshot()
		if len(held) != len(want) {
			return false
		}
		for k, v := range want {
			if held[k] != v {
				return false
			}
		}
		return true
	}, 30*time.Second, 20*time.Millisecond)
	_, overlap := f.snapshot()
	require.Zero(t, overlap, "a row was in two in-flight batches")
	stop2()
	wg.Wait()
	counts, _, _, err := NewAdmin(b.pool).Counts(ctx, []string{"s"})
	require.NoError(t, err)
	require.Zero(t, counts["s"].Pending)
}

// An outage pauses delivery without dead-lettering; a poison row is dead-lettered while the
// rest of its batch lands; a backlog of updates to one row collapses into few writes.
func TestEngineOutagePoisonAndCollapse(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	f := newFakeSink(t)
	f.set(func(f *fakeSink) { f.down = true; f.poison["bad"] = true })
	e := testEngine(b.q, f, 50)
	ectx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { e.Run(ectx); close(done) }()
	defer func() { stop(); <-done }()

	for i := 0; i < 100; i++ {
		require.NoError(t, b.rec.Record(ctx, ch("one", t0.Add(time.Duration(i)*time.Millisecond), connector.OpUpsert, fmt.Sprint("v", i))))
	}
	require.NoError(t, b.rec.Record(ctx, ch("bad", t0, connector.OpUpsert, "x")))
	require.NoError(t, b.rec.Record(ctx, ch("good", t0, connector.OpUpsert, "x")))
	require.Eventually(t, func() bool { return e.Status()["s"].State == "paused" }, 5*time.Second, 10*time.Millisecond)
	ds, err := NewAdmin(b.pool).DeadLetters(ctx, "s", "", 10)
	require.NoError(t, err)
	require.Empty(t, ds, "an outage must not dead-letter")

	f.set(func(f *fakeSink) { f.down = false })
	require.Eventually(t, func() bool {
		held, _ := f.snapshot()
		return held["good"] > 0 && held["one"] == newestSeqs(t, b)["one"]
	}, 10*time.Second, 10*time.Millisecond)
	f.mu.Lock()
	writes := f.writes["one"]
	f.mu.Unlock()
	require.LessOrEqual(t, writes, 3, "100 updates to one row queued during an outage collapse")
	require.Eventually(t, func() bool {
		ds, err = NewAdmin(b.pool).DeadLetters(ctx, "s", "", 10)
		return err == nil && len(ds) == 1
	}, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, "bad", ds[0].RowID)
	require.Contains(t, ds[0].Reason, "poison row")
	require.Equal(t, "running", e.Status()["s"].State)
}

// The wait before the next read: a trickle lingers, a batch a quarter full or more does not;
// while ingest keeps the machine busy every batch short of full lingers five times longer.
func TestLingerForBatchSizeAndLoad(t *testing.T) {
	busy := false
	e := NewEngine(nil, []SinkConfig{{Sink: newFakeSink(t), BatchSize: 1000}}, EngineOptions{Linger: 20 * time.Millisecond, Busy: func() bool { return busy }})
	d := newDeliverer(e, e.sinks[0])
	for n, want := range map[int]time.Duration{0: 20 * time.Millisecond, 249: 20 * time.Millisecond, 250: 0, 999: 0, 1000: 0} {
		require.Equal(t, want, d.lingerFor(n), "idle, %d items", n)
	}
	busy = true
	for n, want := range map[int]time.Duration{0: 100 * time.Millisecond, 250: 100 * time.Millisecond, 999: 100 * time.Millisecond, 1000: 0} {
		require.Equal(t, want, d.lingerFor(n), "busy, %d items", n)
	}
	e.opts.Linger = 0
	require.Zero(t, d.lingerFor(1), "linger 0 turns both off")
}

// Saturated follows the webhook groups' sizes, and forgets them once groups stop coming.
func TestRecorderSaturatedFollowsGroupSizes(t *testing.T) {
	r := &Recorder{}
	require.False(t, r.Saturated())
	for range 30 {
		r.observeGroup(20)
	}
	require.True(t, r.Saturated(), "groups of 20")
	for range 30 {
		r.observeGroup(3)
	}
	require.False(t, r.Saturated(), "groups of 3")
	for range 30 {
		r.observeGroup(20)
	}
	r.groupAt.Store(time.Now().Add(-time.Second).UnixNano())
	require.False(t, r.Saturated(), "no group for a second: nothing is arriving")
}

// A row whose rejection text cannot be stored as it is (over 2,000 bytes naming many
// unconvertible non-ASCII values, as a warehouse row with 30 bad columns gives; or holding
// a NUL byte) is dead-lettered with a storable reason, and rows recorded after it still reach
// the sink: the settle must not fail on the text and leave the sink re-applying the batch.
func TestEnginePoisonTextNeverStopsTheSink(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	f := newFakeSink(t)
	var long strings.Builder
	for i := 0; i < 30; i++ {
		fmt.Fprintf(&long, "column \"c%d\": value \"%s\" does not convert to bigint; ", i, strings.Repeat("ü", 24))
	}
	require.False(t, utf8.RuneStart(long.String()[maxErrorText]), "a cut at the limit must fall inside a character")
	f.set(func(f *fakeSink) {
		f.poison["long"], f.why["long"] = true, long.String()
		f.poison["nul"], f.why["nul"] = true, "value \"a\x00b\" does not convert"
	})
	e := testEngine(b.q, f, 50)
	ectx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { e.Run(ectx); close(done) }()
	defer func() { stop(); <-done }()

	require.NoError(t, b.rec.Record(ctx, ch("long", t0, connector.OpUpsert, "x")))
	require.NoError(t, b.rec.Record(ctx, ch("nul", t0, connector.OpUpsert, "x")))
	require.NoError(t, b.rec.Record(ctx, ch("same-batch", t0, connector.OpUpsert, "x")))
	var ds []DeadLetter
	require.Eventually(t, func() bool {
		var err error
		ds, err = NewAdmin(b.pool).DeadLetters(ctx, "s", "", 10)
		return err == nil && len(ds) == 2
	}, 10*time.Second, 10*time.Millisecond, "both poison rows must be dead-lettered")
	for _, d := range ds {
		require.True(t, utf8.ValidString(d.Reason), d.RowID)
		require.NotContains(t, d.Reason, "\x00", d.RowID)
		require.LessOrEqual(t, len(d.Reason), maxErrorText, d.RowID)
		require.True(t, strings.HasPrefix(d.Reason, "column \"c0\"") || strings.HasPrefix(d.Reason, "value \"ab\""), "the reason keeps the text: %q", d.Reason)
	}
	for i := 0; i < 20; i++ {
		require.NoError(t, b.rec.Record(ctx, ch(fmt.Sprint("later", i), t0, connector.OpUpsert, "x")))
	}
	require.Eventually(t, func() bool {
		held, _ := f.snapshot()
		return held["same-batch"] > 0 && held["later19"] > 0
	}, 10*time.Second, 10*time.Millisecond, "the sink must move on past the poison rows")
	counts, _, _, err := NewAdmin(b.pool).Counts(ctx, []string{"s"})
	require.NoError(t, err)
	require.Equal(t, int64(2), counts["s"].DeadLetter)
}

// batchSink chooses its own batch size (sink.Batcher).
type batchSink struct{ *fakeSink }

func (batchSink) BatchSize() int { return 7 }

// A sink's own batch size is used when the SinkConfig leaves it unset; an explicit one wins.
func TestEngineTakesTheSinksBatchSize(t *testing.T) {
	t.Parallel()
	s := batchSink{newFakeSink(t)}
	e := NewEngine(nil, []SinkConfig{{Sink: s}}, EngineOptions{})
	require.Equal(t, 7, e.sinks[0].BatchSize)
	e = NewEngine(nil, []SinkConfig{{Sink: s, BatchSize: 3}}, EngineOptions{})
	require.Equal(t, 3, e.sinks[0].BatchSize)
	e = NewEngine(nil, []SinkConfig{{Sink: newFakeSink(t)}}, EngineOptions{})
	require.Equal(t, BatchSizeDefault, e.sinks[0].BatchSize)
}
