package groupcommit

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var errRefused = errors.New("refused")

// recorder is a Commit that notes the groups it sees and, while hold is open, blocks the
// first group until release is closed.
type recorder struct {
	mu      sync.Mutex
	groups  [][]int
	entered chan struct{} // closed when the first group is in Commit
	release chan struct{}
	once    sync.Once
}

func newRecorder() *recorder {
	return &recorder{entered: make(chan struct{}), release: make(chan struct{})}
}

func (r *recorder) commit(ctx context.Context, batch []int) error {
	r.mu.Lock()
	r.groups = append(r.groups, append([]int(nil), batch...))
	first := len(r.groups) == 1
	r.mu.Unlock()
	if first {
		r.once.Do(func() { close(r.entered) })
		<-r.release
	}
	return nil
}

func (r *recorder) sizes() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []int
	for _, g := range r.groups {
		out = append(out, len(g))
	}
	return out
}

// doAll calls g.Do for each v concurrently and returns their errors once all returned.
func doAll(g *Group[int], vs ...int) func() []error {
	errs := make([]error, len(vs))
	var wg sync.WaitGroup
	for i, v := range vs {
		wg.Go(func() { errs[i] = g.Do(context.Background(), v) })
	}
	return func() []error { wg.Wait(); return errs }
}

// Requests arriving while every committer is busy form the next group, and Observe sees each
// group's size.
func TestBusyCommittersGatherTheNextGroup(t *testing.T) {
	t.Parallel()
	r := newRecorder()
	var observed []int
	g := New(Options[int]{Commit: r.commit, Refused: errRefused, MaxBatch: 100, Committers: 1, Timeout: time.Minute,
		Observe: func(n int) { observed = append(observed, n) }})
	defer g.Close()
	first := doAll(g, 0)
	<-r.entered
	rest := gathered(t, g, 1, 2, 3, 4, 5)
	close(r.release)
	require.Equal(t, []error{nil}, first())
	require.Equal(t, []error{nil, nil, nil, nil, nil}, answers(rest))
	require.Equal(t, []int{1, 5}, r.sizes())
	require.Equal(t, []int{1, 5}, observed)
}

// gathered queues vs (as Do does) and waits until the loop took them all off the queue: while
// every committer is busy, into the group it gathers.
func gathered(t *testing.T, g *Group[int], vs ...int) []*call[int] {
	t.Helper()
	var cs []*call[int]
	for _, v := range vs {
		c := &call[int]{v: v, ready: make(chan struct{})}
		g.in <- c
		cs = append(cs, c)
	}
	require.Eventually(t, func() bool { return len(g.in) == 0 }, 5*time.Second, time.Millisecond)
	return cs
}

// answers waits for the calls' answers.
func answers(cs []*call[int]) []error {
	var errs []error
	for _, c := range cs {
		<-c.ready
		errs = append(errs, c.err)
	}
	return errs
}

// A group never exceeds MaxBatch: the rest waits for the next one.
func TestMaxBatchBoundsAGroup(t *testing.T) {
	t.Parallel()
	r := newRecorder()
	g := New(Options[int]{Commit: r.commit, Refused: errRefused, MaxBatch: 2, Committers: 1, Backlog: 10, Timeout: time.Minute})
	defer g.Close()
	first := doAll(g, 0)
	<-r.entered
	rest := doAll(g, 1, 2, 3, 4, 5)
	// Two join the group being gathered, three wait in the queue.
	require.Eventually(t, func() bool { return len(g.in) == 3 }, 5*time.Second, time.Millisecond)
	close(r.release)
	first()
	rest()
	require.Equal(t, []int{1, 2, 2, 1}, r.sizes())
}

// With a free committer, the first request waits MaxWait for company, and a full group goes
// at once without waiting the rest of MaxWait.
func TestMaxWaitGathersCompany(t *testing.T) {
	t.Parallel()
	r := newRecorder()
	close(r.release)
	g := New(Options[int]{Commit: r.commit, Refused: errRefused, MaxWait: time.Hour, MaxBatch: 3, Committers: 2, Timeout: time.Minute})
	defer g.Close()
	require.Equal(t, []error{nil, nil, nil}, doAll(g, 1, 2, 3)())
	require.Equal(t, []int{3}, r.sizes())
}

// Commit's error is every request's of the group.
func TestCommitErrorReachesTheWholeGroup(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	g := New(Options[int]{Refused: errRefused, MaxBatch: 10, Committers: 1, Timeout: time.Minute,
		Commit: func(_ context.Context, batch []int) error {
			if batch[0] == 0 {
				once.Do(func() { close(entered) })
				<-release
				return nil
			}
			return boom
		}})
	defer g.Close()
	first := doAll(g, 0)
	<-entered
	rest := gathered(t, g, 1, 2, 3)
	close(release)
	require.Equal(t, []error{nil}, first())
	require.Equal(t, []error{boom, boom, boom}, answers(rest))
}

// Timeout bounds a Commit call.
func TestTimeoutBoundsCommit(t *testing.T) {
	t.Parallel()
	g := New(Options[int]{Refused: errRefused, MaxBatch: 10, Committers: 1, Timeout: 10 * time.Millisecond,
		Commit: func(ctx context.Context, _ []int) error { <-ctx.Done(); return ctx.Err() }})
	defer g.Close()
	require.ErrorIs(t, g.Do(context.Background(), 1), context.DeadlineExceeded)
}

// A caller whose context ends while its group commits is answered at once, refused.
func TestCancelledCallerIsRefused(t *testing.T) {
	t.Parallel()
	r := newRecorder()
	g := New(Options[int]{Commit: r.commit, Refused: errRefused, MaxBatch: 10, Committers: 1, Timeout: time.Minute})
	defer g.Close()
	defer close(r.release)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- g.Do(ctx, 1) }()
	<-r.entered
	cancel()
	err := <-errc
	require.ErrorIs(t, err, errRefused)
	require.NotErrorIs(t, err, ErrClosed)
}

// Close waits for the group in flight, which commits; every request after Close is refused
// with ErrClosed, never left waiting (the queue has room, so a send can win over the closed
// loop).
func TestCloseCommitsInFlightAndRefusesLater(t *testing.T) {
	t.Parallel()
	r := newRecorder()
	g := New(Options[int]{Commit: r.commit, Refused: errRefused, MaxBatch: 10, Committers: 1, Timeout: time.Minute})
	first := doAll(g, 1)
	<-r.entered
	closed := make(chan struct{})
	go func() { g.Close(); close(closed) }()
	select {
	case <-closed:
		t.Fatal("Close returned with a group in flight")
	case <-time.After(20 * time.Millisecond):
	}
	close(r.release)
	<-closed
	require.Equal(t, []error{nil}, first())
	for range 50 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := g.Do(ctx, 2)
		cancel()
		require.ErrorIs(t, err, errRefused)
		require.ErrorIs(t, err, ErrClosed)
	}
	require.Equal(t, []int{1}, r.sizes())
}
