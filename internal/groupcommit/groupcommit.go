// Package groupcommit gathers concurrent requests into groups and commits each group with one
// call, a bounded number of groups at once: the group commit of the ledger's recorder and of
// the audit log's. Requests arriving while every committer is busy join the next group, so a
// group grows with the load and costs the state store less per request.
package groupcommit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrClosed is wrapped (with Options.Refused) by the error of a request that came after Close or
// was still waiting for a group at Close.
var ErrClosed = errors.New("shutting down")

// Options configures a Group. Commit and Refused are required.
type Options[T any] struct {
	// Commit commits a group. Its error is every request's in the group; a request's own
	// outcome, if any, is Commit's to note in the request.
	Commit func(ctx context.Context, batch []T) error
	// Refused is wrapped by the errors of requests that were not committed: their context
	// ended, or the group was closed.
	Refused error
	// MaxWait is how long the first request of a group waits for company when a committer is
	// free; 0 waits not at all. Requests gather into the next group anyway while every
	// committer is busy.
	MaxWait time.Duration
	// MaxBatch bounds a group (> 0).
	MaxBatch int
	// Committers is the number of groups committing at once (> 0).
	Committers int
	// Backlog is the capacity of the queue of requests waiting for a group; default
	// MaxBatch*Committers.
	Backlog int
	// Timeout bounds one Commit call (> 0).
	Timeout time.Duration
	// Observe, when set, is called with each group's size as it goes to a committer.
	Observe func(n int)
}

// Group commits requests of type T in groups. Call Close to stop it.
type Group[T any] struct {
	opts Options[T]
	in   chan *call[T]
	done chan struct{}
	stop context.CancelFunc
}

// call is a request waiting for its group's commit.
type call[T any] struct {
	v     T
	err   error
	ready chan struct{}
}

// New starts the gathering loop.
func New[T any](opts Options[T]) *Group[T] {
	if opts.Backlog <= 0 {
		opts.Backlog = opts.MaxBatch * opts.Committers
	}
	ctx, cancel := context.WithCancel(context.Background())
	g := &Group[T]{opts: opts, in: make(chan *call[T], opts.Backlog), done: make(chan struct{}), stop: cancel}
	go func() { g.loop(ctx); close(g.done) }()
	return g
}

// Close stops the loop after the groups in flight are committed; requests still waiting for a
// group are refused.
func (g *Group[T]) Close() {
	g.stop()
	<-g.done
}

// Do hands v to the next group and returns once the group committed, with Commit's error. An
// error wrapping Refused means v was not committed, or ctx ended while its group committed:
// the group may still commit it.
func (g *Group[T]) Do(ctx context.Context, v T) error {
	c := &call[T]{v: v, ready: make(chan struct{})}
	select {
	case g.in <- c:
	case <-ctx.Done():
		return fmt.Errorf("%w: %v", g.opts.Refused, ctx.Err())
	case <-g.done:
		return fmt.Errorf("%w: %w", g.opts.Refused, ErrClosed)
	}
	select {
	case <-c.ready:
		return c.err
	case <-ctx.Done():
		return fmt.Errorf("%w: %v", g.opts.Refused, ctx.Err())
	case <-g.done:
		// The send above can win over a closed loop (the queue has room); nothing answers a
		// request the loop did not take, and everything it took is answered before done.
		select {
		case <-c.ready:
			return c.err
		default:
			return fmt.Errorf("%w: %w", g.opts.Refused, ErrClosed)
		}
	}
}

// loop forms the groups, one at a time, and hands each to a free committer. A group waits
// MaxWait for company after its first request, and then keeps gathering for as long as every
// committer is busy: waiting for a committer costs the group nothing. Only one group gathers
// at a time: when every idle committer gathered its own group, arrivals were spread over them
// and the ledger's groups averaged under two changes at a steady 2,000 requests a second.
func (g *Group[T]) loop(ctx context.Context) {
	slots := make(chan struct{}, g.opts.Committers)
	var inflight sync.WaitGroup
	defer inflight.Wait()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		var batch []*call[T]
		select {
		case c := <-g.in:
			batch = append(make([]*call[T], 0, 16), c)
		case <-ctx.Done():
			g.drain()
			return
		}
		if g.opts.MaxWait > 0 {
			timer.Reset(g.opts.MaxWait)
		gather:
			for len(batch) < g.opts.MaxBatch {
				select {
				case c := <-g.in:
					batch = append(batch, c)
				case <-timer.C:
					break gather
				}
			}
			timer.Stop()
		}
	wait:
		for len(batch) < g.opts.MaxBatch {
			select {
			case slots <- struct{}{}:
				break wait
			case c := <-g.in:
				batch = append(batch, c)
			}
		}
		if len(batch) >= g.opts.MaxBatch {
			slots <- struct{}{}
		}
		if g.opts.Observe != nil {
			g.opts.Observe(len(batch))
		}
		inflight.Add(1)
		go func(batch []*call[T]) {
			defer inflight.Done()
			vs := make([]T, len(batch))
			for i, c := range batch {
				vs[i] = c.v
			}
			cctx, cancel := context.WithTimeout(context.Background(), g.opts.Timeout)
			err := g.opts.Commit(cctx, vs)
			cancel()
			<-slots
			for _, c := range batch {
				c.err = err
				close(c.ready)
			}
		}(batch)
	}
}

// drain refuses the requests still queued at shutdown.
func (g *Group[T]) drain() {
	for {
		select {
		case c := <-g.in:
			c.err = fmt.Errorf("%w: %w", g.opts.Refused, ErrClosed)
			close(c.ready)
		default:
			return
		}
	}
}
