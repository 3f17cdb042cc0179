package meilisink

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	meili "github.com/meilisearch/meilisearch-go"

	"github.com/appwrite-sync/appwrite-sync/connector"
)

// Polling cadence. A task of a few documents finishes in a few milliseconds, so the first poll
// comes soon; a long task is polled less and less often.
const (
	pollMin = 4 * time.Millisecond
	pollMax = 100 * time.Millisecond
	// pollUIDs bounds the uids asked per request (they travel in the query string).
	pollUIDs = 500
	// pollFailures is how many polls in a row may fail before the waiters are told: one 503
	// should not make every in-flight batch be re-sent.
	pollFailures = 3
)

// errClosed is returned by waits after Close.
var errClosed = errors.New("meilisearch sink is closed")

// outcome is a finished task, a uid the server does not know (task nil), or the reason the
// task could not be observed.
type outcome struct {
	uid  int64
	task *meili.Task
	err  error
}

// poller watches the tasks of every Apply in flight with one GET /tasks?uids=… per round
// instead of one GET per task, so its cost does not grow with the number of workers.
type poller struct {
	client  meili.ServiceManager
	timeout time.Duration

	mu      sync.Mutex
	waiting map[int64][]chan outcome
	kick    chan struct{}

	stop     context.CancelFunc
	done     chan struct{}
	stopOnce sync.Once
}

// newPoller starts the polling goroutine; ctx bounds its lifetime (stop cancels it).
func newPoller(ctx context.Context, client meili.ServiceManager, timeout time.Duration) *poller {
	ctx, cancel := context.WithCancel(ctx)
	p := &poller{client: client, timeout: timeout, waiting: map[int64][]chan outcome{},
		kick: make(chan struct{}, 1), stop: cancel, done: make(chan struct{})}
	go p.run(ctx)
	return p
}

// close stops polling; pending waits fail with errClosed.
func (p *poller) close() {
	p.stopOnce.Do(func() {
		p.stop()
		<-p.done
	})
}

// wait blocks until every task in uids finished (succeeded, failed or canceled) and returns
// them by uid; a uid the server does not know maps to nil (it lost its tasks: restarted on a
// fresh database, or the task was deleted). It fails when ctx ends, when polling keeps
// failing, or on Close.
func (p *poller) wait(ctx context.Context, uids []int64) (map[int64]*meili.Task, error) {
	if len(uids) == 0 {
		return map[int64]*meili.Task{}, nil
	}
	ch := make(chan outcome, len(uids))
	p.mu.Lock()
	select {
	case <-p.done:
		p.mu.Unlock()
		return nil, errClosed
	default:
	}
	for _, uid := range uids {
		p.waiting[uid] = append(p.waiting[uid], ch)
	}
	p.mu.Unlock()
	select {
	case p.kick <- struct{}{}:
	default:
	}
	defer p.forget(uids, ch)
	out := make(map[int64]*meili.Task, len(uids))
	for len(out) < len(uids) {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for %d meilisearch task(s): %w: %w", len(uids)-len(out), connector.ErrSinkUnavailable, ctx.Err())
		case o := <-ch:
			if o.err != nil {
				return nil, o.err
			}
			out[o.uid] = o.task
		}
	}
	return out, nil
}

// forget drops ch from the waiters of uids (those still waiting when wait gave up).
func (p *poller) forget(uids []int64, ch chan outcome) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, uid := range uids {
		list := p.waiting[uid]
		for i, c := range list {
			if c == ch {
				list = append(list[:i], list[i+1:]...)
				break
			}
		}
		if len(list) == 0 {
			delete(p.waiting, uid)
		} else {
			p.waiting[uid] = list
		}
	}
}

func (p *poller) pending() []int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	uids := make([]int64, 0, min(len(p.waiting), pollUIDs))
	for uid := range p.waiting {
		if len(uids) == pollUIDs {
			break
		}
		uids = append(uids, uid)
	}
	return uids
}

func (p *poller) run(ctx context.Context) {
	defer func() {
		p.mu.Lock()
		for uid, list := range p.waiting {
			for _, ch := range list {
				select {
				case ch <- outcome{err: errClosed}:
				default:
				}
			}
			delete(p.waiting, uid)
		}
		close(p.done)
		p.mu.Unlock()
	}()
	interval, failures := pollMin, 0
	// Since Go 1.23 Reset needs no draining: a stopped or reset timer never delivers a stale tick.
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if len(p.pending()) == 0 {
			select {
			case <-ctx.Done():
				return
			case <-p.kick:
			}
			interval = pollMin // give the tasks just enqueued a moment before asking
		}
		timer.Reset(interval)
		select {
		case <-ctx.Done():
			return
		case <-p.kick:
			// New tasks while a long task is being waited for: ask soon.
			timer.Reset(pollMin)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
			interval = pollMin
		case <-timer.C:
		}
		uids := p.pending()
		if len(uids) == 0 {
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, p.timeout)
		res, err := p.client.GetTasks(rctx, &meili.TasksQuery{UIDS: uids, Limit: int64(len(uids))})
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			err = classify("polling meilisearch tasks", err)
			if failures >= pollFailures || errors.Is(err, connector.ErrUnauthorized) {
				p.failAll(uids, err)
				failures = 0
			}
			interval = min(interval*2, pollMax)
			continue
		}
		failures = 0
		finished := 0
		unknown := make(map[int64]bool, len(uids))
		for _, uid := range uids {
			unknown[uid] = true
		}
		for i := range res.Results {
			t := &res.Results[i]
			delete(unknown, t.UID)
			switch t.Status {
			case meili.TaskStatusSucceeded, meili.TaskStatusFailed, meili.TaskStatusCanceled:
				p.deliver(t.UID, outcome{uid: t.UID, task: t})
				finished++
			}
		}
		// Meilisearch registers a task before it answers the request that enqueued it, and the
		// query asks for every uid at once: a uid missing from the answer is not a task (yet)
		// but one the server lost.
		for uid := range unknown {
			p.deliver(uid, outcome{uid: uid})
			finished++
		}
		if finished > 0 {
			interval = pollMin
		} else {
			interval = min(interval*2, pollMax)
		}
	}
}

func (p *poller) deliver(uid int64, o outcome) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ch := range p.waiting[uid] {
		ch <- o // buffered for every uid the waiter registered
	}
	delete(p.waiting, uid)
}

// failAll tells the waiters of uids that their tasks cannot be observed.
func (p *poller) failAll(uids []int64, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, uid := range uids {
		for _, ch := range p.waiting[uid] {
			select {
			case ch <- outcome{err: err}:
			default:
			}
		}
		delete(p.waiting, uid)
	}
}
