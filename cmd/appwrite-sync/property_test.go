package main

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/internal/pgtest"
	"github.com/appwrite-sync/appwrite-sync/migrations"
)

type histEvent struct {
	id string
	event
	version connector.Version
	title   string
	views   int64
	author  string
}

// history generates random creates, updates (some at the same millisecond: ties), deletes
// (carrying the unchanged $updatedAt, as Appwrite sends them) and re-creates for n rows.
func history(rng *rand.Rand, n int) ([]histEvent, map[string]*histEvent) {
	base := time.Date(2026, 3, 26, 10, 0, 0, 0, time.UTC)
	var all []histEvent
	for r := 0; r < n; r++ {
		id := fmt.Sprintf("row.%d-x", r) // dots are legal in Appwrite ids
		if r%3 == 0 {
			id = fmt.Sprintf("%036d", r) // 36 characters, the SQL-backed maximum
		}
		t := base.Add(time.Duration(rng.Intn(1000)) * time.Millisecond)
		live := false
		var last histEvent
		steps := 2 + rng.Intn(7)
		for s := 0; s < steps; s++ {
			var e histEvent
			switch {
			case !live:
				t = t.Add(time.Duration(1+rng.Intn(3)) * time.Millisecond)
				e = mkEvent(id, "create", t, fmt.Sprintf("t-%d-%d", r, s), int64(rng.Intn(1e6)), fmt.Sprintf("a%d", rng.Intn(5)))
				live = true
			case rng.Intn(5) == 0:
				e = mkEvent(id, "delete", t, last.title, last.views, last.author) // same row, same $updatedAt
				live = false
			default:
				t = t.Add(time.Duration(rng.Intn(3)) * time.Millisecond) // 0: a tie at the same instant
				e = mkEvent(id, "update", t, fmt.Sprintf("t-%d-%d", r, s), int64(rng.Intn(1e6)), fmt.Sprintf("a%d", rng.Intn(5)))
			}
			all = append(all, e)
			last = e
		}
	}
	truth := map[string]*histEvent{}
	for i := range all {
		e := &all[i]
		if w, ok := truth[e.id]; !ok || e.version.Compare(w.version) > 0 {
			truth[e.id] = e
		}
	}
	return all, truth
}

func mkEvent(id, action string, t time.Time, title string, views int64, author string) histEvent {
	body := rowBody(id, t, title, views, author)
	h, err := connector.ContentHash(json.RawMessage(body))
	if err != nil {
		panic(err)
	}
	op := connector.OpUpsert
	if action == "delete" {
		op = connector.OpDelete
	}
	return histEvent{id: id, event: event{action: action, body: body}, version: connector.Version{UpdatedAt: t, Op: op, Hash: h},
		title: title, views: views, author: author}
}

// TestPropertyConvergence: random histories delivered through the real HTTP handler to two
// replicas, with duplicates, reordering and replays; afterwards the warehouse equals the ground
// truth row by row.
func TestPropertyConvergence(t *testing.T) {
	t.Parallel()
	for _, seed := range []int64{1, 2, 3} {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			state := pgtest.NewMigratedDatabase(t, migrations.Up)
			wh := pgtest.NewDatabase(t)
			a := startInstance(t, testConfig(t, state, wh, ""))
			b := startInstance(t, testConfig(t, state, wh, ""))
			rng := rand.New(rand.NewSource(seed))
			all, truth := history(rng, 120)

			deliveries := append([]histEvent(nil), all...)
			for _, e := range all {
				if rng.Intn(10) < 3 {
					deliveries = append(deliveries, e) // duplicate
				}
			}
			rng.Shuffle(len(deliveries), func(i, j int) { deliveries[i], deliveries[j] = deliveries[j], deliveries[i] })
			for i := 0; i < len(all)/5; i++ {
				deliveries = append(deliveries, all[rng.Intn(len(all))]) // late replays of old events
			}
			// One replica delivers the warehouse at a time; halfway through, that one stops (it
			// resigns its lease) and the other takes over from the settled cursor.
			var leader, other *instance
			require.Eventually(t, func() bool {
				_, sa := adminGet(t, a, "/admin/status")
				_, sb := adminGet(t, b, "/admin/status")
				switch standbyA, standbyB := strings.Contains(sa, `"standby"`), strings.Contains(sb, `"standby"`); {
				case standbyB && !standbyA:
					leader, other = a, b
				case standbyA && !standbyB:
					leader, other = b, a
				default:
					return false
				}
				return true
			}, 20*time.Second, 20*time.Millisecond, "exactly one replica delivers")
			var bad atomic.Int64
			send := func(from, to int, targets ...*instance) {
				var wg sync.WaitGroup
				work := make(chan int)
				for w := 0; w < 16; w++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := range work {
							if code := post(t, targets[i%len(targets)].base, deliveries[i].id, deliveries[i].event); code != 200 {
								bad.Add(1)
							}
						}
					}()
				}
				for i := from; i < to; i++ {
					work <- i
				}
				close(work)
				wg.Wait()
			}
			half := len(deliveries) / 2
			send(0, half, a, b)
			leader.stop()
			send(half, len(deliveries), other)
			require.Eventually(t, func() bool {
				_, body := adminGet(t, other, "/admin/status")
				return strings.Contains(body, `"state":"running"`)
			}, 20*time.Second, 20*time.Millisecond, "the remaining replica takes the delivery over")
			require.Zero(t, bad.Load(), "every delivery must be acknowledged with 200")

			waitDrained(t, state, 60*time.Second)
			got := warehouseRows(t, wh)
			want := 0
			for id, e := range truth {
				if e.version.Op == connector.OpDelete {
					_, present := got[id]
					require.False(t, present, "deleted row %s must be absent", id)
					continue
				}
				want++
				g, present := got[id]
				require.True(t, present, "row %s must be present", id)
				require.Equal(t, e.title, g.Title, id)
				require.Equal(t, e.views, g.Views, id)
				require.Equal(t, e.author, g.Author, id)
				require.True(t, e.version.UpdatedAt.Equal(g.Updated), id)
			}
			require.Equal(t, want, len(got), "warehouse holds rows that the source does not")
		})
	}
}
