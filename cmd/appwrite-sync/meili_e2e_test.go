package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/connector/ledger"
	"github.com/appwrite-sync/appwrite-sync/connector/sink/meilisink"
	"github.com/appwrite-sync/appwrite-sync/internal/meilitest"
	"github.com/appwrite-sync/appwrite-sync/internal/pgtest"
	"github.com/appwrite-sync/appwrite-sync/migrations"
)

// deliver posts events in order to in and records the newest version of each row.
func deliver(t *testing.T, in *instance, truth map[string]*histEvent, events ...histEvent) {
	t.Helper()
	for i := range events {
		e := events[i]
		require.Equal(t, http.StatusOK, post(t, in.base, e.id, e.event), "%s %s", e.action, e.id)
		if w, ok := truth[e.id]; !ok || e.version.Compare(w.version) > 0 {
			truth[e.id] = &e
		}
	}
}

func deadLetters(t *testing.T, in *instance, sinkName string) []ledger.DeadLetter {
	t.Helper()
	code, body := adminGet(t, in, "/admin/dead-letter?sink="+sinkName)
	require.Equal(t, http.StatusOK, code, body)
	var out struct {
		DeadLetter []ledger.DeadLetter `json:"dead_letter"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &out))
	return out.DeadLetter
}

// Create, update, delete and re-create rows with dotted, dashed and 36-character ids through
// the real webhook handler: the index ends equal to the ground truth, and so does the
// warehouse. Deleting an id that was never indexed succeeds.
func TestMeiliEndToEnd(t *testing.T) {
	t.Parallel()
	state, wh := pgtest.NewMigratedDatabase(t, migrations.Up), pgtest.NewDatabase(t)
	d := newMeili(t, meilitest.Options{MasterKey: "e2e-master-key"})
	in := startInstance(t, meiliConfig(t, state, wh, d.url, meiliOpts{Meili: `api_key: "e2e-master-key"`}))
	base := time.Date(2026, 3, 26, 10, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return base.Add(time.Duration(ms) * time.Millisecond) }
	truth := map[string]*histEvent{}
	ids := []string{"a.b", "row.1-x", "dash-ed-id", "0123456789abcdef0123456789abcdef0123", "v.1.2.3", "plain"}
	for _, id := range ids {
		deliver(t, in, truth, mkEvent(id, "create", at(1), "created "+id, 1, "ada"))
	}
	waitDrained(t, state, 30*time.Second)
	indexEqualsTruth(t, d.srv, truth)

	for _, id := range ids {
		deliver(t, in, truth, mkEvent(id, "update", at(2), "updated "+id, 2, "bob"))
	}
	for _, id := range ids[:3] {
		deliver(t, in, truth, mkEvent(id, "delete", at(2), "updated "+id, 2, "bob"))
	}
	deliver(t, in, truth, mkEvent("never.indexed-0123456789abcdef0123", "delete", at(1), "x", 0, "x"))
	waitDrained(t, state, 30*time.Second)
	indexEqualsTruth(t, d.srv, truth)
	require.Zero(t, d.srv.DocumentCount("posts")-3)

	for _, id := range ids[:2] { // re-create two of the deleted rows
		deliver(t, in, truth, mkEvent(id, "create", at(3), "again "+id, 3, "cy"))
	}
	waitDrained(t, state, 30*time.Second)
	indexEqualsTruth(t, d.srv, truth)
	require.Empty(t, deadLetters(t, in, meilisink.Name))

	info, ok := d.srv.Index("posts")
	require.True(t, ok)
	require.Equal(t, "id", info.PrimaryKey)
	require.ElementsMatch(t, []any{"views", "$id"}, info.Settings["filterableAttributes"])
	for _, tk := range d.srv.Tasks() {
		require.Equal(t, meilitest.TaskSucceeded, tk.Status, "no task may fail: %+v", tk)
	}
}

// A row whose value makes its task fail is dead-lettered with Meilisearch's code and message,
// while the rest of its batch lands (and lands in the warehouse, which accepts the value).
func TestMeiliPoisonedRowIsDeadLetteredAndItsBatchLands(t *testing.T) {
	t.Parallel()
	state, wh := pgtest.NewMigratedDatabase(t, migrations.Up), pgtest.NewDatabase(t)
	d := newMeili(t, meilitest.Options{})
	// Meilisearch "is still starting": the sink cannot start, so the rows queue up and are
	// then claimed as one batch.
	d.down.Store(true)
	in := startInstance(t, meiliConfig(t, state, wh, d.url, meiliOpts{}))
	truth := map[string]*histEvent{}
	base := time.Date(2026, 3, 26, 10, 0, 0, 0, time.UTC)
	for i := 0; i < 20; i++ {
		title := fmt.Sprint("fine ", i)
		if i == 13 {
			title = meiliPoison
		}
		deliver(t, in, truth, mkEvent(fmt.Sprintf("p.%d", i), "create", base, title, int64(i), "ada"))
	}
	d.down.Store(false)
	require.Eventually(t, func() bool { return len(deadLetters(t, in, meilisink.Name)) == 1 }, 30*time.Second, 50*time.Millisecond)
	waitDrained(t, state, 30*time.Second)

	dl := deadLetters(t, in, meilisink.Name)[0]
	require.Equal(t, "p.13", dl.RowID)
	require.Contains(t, dl.Reason, meiliPoisonCode)
	require.Contains(t, dl.Reason, "meilitest: injected task failure")
	delete(truth, "p.13")
	indexEqualsTruth(t, d.srv, truth)
	require.Len(t, warehouseRows(t, wh), 20, "the warehouse takes the row Meilisearch refused")
	// The poisoned row's first task carried the whole batch: it was bisected, not sent alone.
	var first meilitest.Task
	for _, tk := range d.srv.Tasks() {
		if tk.CustomMetadata == "poison" {
			first = tk
			break
		}
	}
	// (Usually all 20; on a loaded machine the sink may start while the last webhooks are
	// still being recorded, and its first batch then holds fewer.)
	require.Greater(t, first.Details["receivedDocuments"], int64(1), "the poisoned row went out in a batch with others")
}

// A storm of 503s delays delivery but loses nothing, and dead-letters nothing.
func TestMeili503StormLosesNothing(t *testing.T) {
	t.Parallel()
	state, wh := pgtest.NewMigratedDatabase(t, migrations.Up), pgtest.NewDatabase(t)
	d := newMeili(t, meilitest.Options{TaskDelay: time.Millisecond})
	// Each injected 503 pauses the sink for a backoff: a short one keeps 30 of them quick.
	in := startInstance(t, meiliConfig(t, state, wh, d.url, meiliOpts{Meili: "batch_size: 25",
		Delivery: "{lease: 5s, poll_interval: 20ms, max_backoff: 50ms}"}))
	rng := rand.New(rand.NewSource(7))
	all, truth := history(rng, 60)
	d.srv.InjectHTTPError(http.StatusServiceUnavailable, 30)
	for _, e := range all {
		require.Equal(t, http.StatusOK, post(t, in.base, e.id, e.event))
	}
	waitDrained(t, state, 60*time.Second)
	require.Equal(t, int64(30), d.srv.Counters().InjectedHTTPErrors, "the storm happened")
	indexEqualsTruth(t, d.srv, truth)
	require.Empty(t, deadLetters(t, in, meilisink.Name))
}

// While Meilisearch's worker is paused, 100 updates of one row collapse: the row is in one
// in-flight batch at a time and the ledger keeps only its newest version, so a handful of
// document writes reach the index, the last one with the newest values.
func TestMeiliPausedWorkerBacklogCollapses(t *testing.T) {
	t.Parallel()
	state, wh := pgtest.NewMigratedDatabase(t, migrations.Up), pgtest.NewDatabase(t)
	d := newMeili(t, meilitest.Options{})
	in := startInstance(t, meiliConfig(t, state, wh, d.url, meiliOpts{}))
	truth := map[string]*histEvent{}
	deliver(t, in, truth, mkEvent("hot.row", "create", time.Date(2026, 3, 26, 10, 0, 0, 0, time.UTC), "v0", 0, "ada"))
	waitDrained(t, state, 30*time.Second)
	d.srv.Pause()
	d.srv.ResetCounters()
	base := time.Date(2026, 3, 26, 11, 0, 0, 0, time.UTC)
	for i := 1; i <= 100; i++ {
		deliver(t, in, truth, mkEvent("hot.row", "update", base.Add(time.Duration(i)*time.Millisecond), fmt.Sprint("v", i), int64(i), "ada"))
	}
	time.Sleep(300 * time.Millisecond)
	queued := d.srv.Counters().DocumentsReceived
	d.srv.Resume()
	waitDrained(t, state, 30*time.Second)
	indexEqualsTruth(t, d.srv, truth)
	c := d.srv.Counters()
	t.Logf("100 updates: %d document(s) enqueued while paused, %d written in all", queued, c.DocumentsWritten)
	require.LessOrEqual(t, c.DocumentsWritten, int64(4), "the backlog must collapse into a few writes")
}

// The property test with both sinks at once: random histories (creates, updates with ties,
// deletes, re-creates; dotted and 36-character ids) delivered with duplicates, reordering
// and late replays through the real handler of two replicas; afterwards the warehouse and the
// index both equal the ground truth.
func TestMeiliPropertyBothSinks(t *testing.T) {
	t.Parallel()
	for _, seed := range []int64{11, 12} {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			state, wh := pgtest.NewMigratedDatabase(t, migrations.Up), pgtest.NewDatabase(t)
			d := newMeili(t, meilitest.Options{TaskDelay: time.Millisecond})
			a := startInstance(t, meiliConfig(t, state, wh, d.url, meiliOpts{Meili: "batch_size: 40"}))
			b := startInstance(t, meiliConfig(t, state, wh, d.url, meiliOpts{Meili: "batch_size: 40"}))
			rng := rand.New(rand.NewSource(seed))
			all, truth := history(rng, 100)
			deliveries := append([]histEvent(nil), all...)
			for _, e := range all {
				if rng.Intn(10) < 3 {
					deliveries = append(deliveries, e)
				}
			}
			rng.Shuffle(len(deliveries), func(i, j int) { deliveries[i], deliveries[j] = deliveries[j], deliveries[i] })
			for i := 0; i < len(all)/5; i++ {
				deliveries = append(deliveries, all[rng.Intn(len(all))])
			}
			var wg sync.WaitGroup
			var bad atomic.Int64
			work := make(chan int)
			for w := 0; w < 12; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range work {
						in := a
						if i%2 == 1 {
							in = b
						}
						if post(t, in.base, deliveries[i].id, deliveries[i].event) != http.StatusOK {
							bad.Add(1)
						}
					}
				}()
			}
			for i := range deliveries {
				work <- i
			}
			close(work)
			wg.Wait()
			require.Zero(t, bad.Load())
			waitDrained(t, state, 90*time.Second)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			require.NoError(t, d.srv.WaitIdle(ctx))

			indexEqualsTruth(t, d.srv, truth)
			got := warehouseRows(t, wh)
			live := 0
			for id, e := range truth {
				g, present := got[id]
				if e.version.Op == connector.OpDelete {
					require.False(t, present, id)
					continue
				}
				live++
				require.True(t, present, id)
				require.Equal(t, e.title, g.Title, id)
				require.Equal(t, e.views, g.Views, id)
				require.Equal(t, e.author, g.Author, id)
			}
			require.Len(t, got, live)
			require.Empty(t, deadLetters(t, a, meilisink.Name))
		})
	}
}
