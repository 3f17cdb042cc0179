package meilitest

import (
	"context"
	"time"
)

// enqueue registers a task for op and returns its summary, taken before the worker can touch
// it. Tasks get global, monotonically increasing uids starting at 0, as in Meilisearch.
func (s *Server) enqueue(indexUID string, kind TaskType, d details, op operation, customMetadata string) summaryView {
	s.mu.Lock()
	t := &task{
		uid:            int64(len(s.tasks)),
		indexUID:       indexUID,
		kind:           kind,
		status:         TaskEnqueued,
		details:        d,
		enqueuedAt:     s.now(),
		customMetadata: customMetadata,
		op:             op,
	}
	s.tasks = append(s.tasks, t)
	s.queue = append(s.queue, t)
	s.counters.TasksByType[kind]++
	summary := t.summary()
	s.notify()
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return summary
}

func (s *Server) work() {
	defer close(s.workerDone)
	for {
		select {
		case <-s.done:
			return
		case <-s.wake:
		}
		for {
			if _, ok := s.runOne(false); !ok {
				break
			}
		}
	}
}

// nextTask removes and returns the task to run: task cancelations first, then task deletions,
// then everything else in FIFO order, mirroring Meilisearch's scheduler priorities.
// s.mu must be held for writing.
func (s *Server) nextTask() *task {
	pick := -1
	for _, kind := range []TaskType{TaskCancelation, TaskDeletion} {
		for i, t := range s.queue {
			if t.kind == kind {
				pick = i
				break
			}
		}
		if pick >= 0 {
			break
		}
	}
	if pick < 0 {
		if len(s.queue) == 0 {
			return nil
		}
		pick = 0
	}
	t := s.queue[pick]
	s.queue = append(s.queue[:pick], s.queue[pick+1:]...)
	return t
}

// runOne processes one task. step is true when called by Step: it runs even while paused and
// without the task delay.
func (s *Server) runOne(step bool) (Task, bool) {
	s.procMu.Lock()
	defer s.procMu.Unlock()

	s.mu.Lock()
	if (s.paused && !step) || isClosed(s.done) {
		s.mu.Unlock()
		return Task{}, false
	}
	t := s.nextTask()
	if t == nil {
		s.mu.Unlock()
		return Task{}, false
	}
	batch := s.nextBatch
	s.nextBatch++
	t.batchUID = &batch
	t.status = TaskProcessing
	t.startedAt = s.now()
	s.processing = t
	delay := s.taskDelay
	injected := s.takeTaskFault(t)
	s.notify()
	s.mu.Unlock()

	if delay > 0 && !step {
		timer := time.NewTimer(delay)
		select {
		case <-timer.C:
		case <-s.done:
			timer.Stop()
		}
	}

	var (
		result details
		err    = injected
	)
	if err == nil {
		result, err = t.op.apply(s, t)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		result = t.op.failed()
		t.status = TaskFailed
		t.err = err
	} else {
		t.status = TaskSucceeded
	}
	for _, d := range result {
		t.details.set(d.key, d.value)
	}
	t.finishedAt = s.now()
	if !t.finishedAt.After(t.startedAt) {
		// Keep finishedAt > startedAt > enqueuedAt even with a coarse or frozen clock.
		t.finishedAt = t.startedAt.Add(time.Microsecond)
	}
	t.op = nil
	s.processing = nil
	s.counters.TasksByStatus[t.status]++
	s.notify()
	return t.snapshot(), true
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// Pause stops the worker from starting new tasks; a task already processing completes.
// Writes keep being accepted and their tasks stay enqueued.
func (s *Server) Pause() {
	s.mu.Lock()
	s.paused = true
	s.mu.Unlock()
}

// Resume lets the worker process the queue again.
func (s *Server) Resume() {
	s.mu.Lock()
	s.paused = false
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Step processes exactly one enqueued task, synchronously and without the task delay, and
// returns it as it finished. It is meant to be used while paused; ok is false when the queue
// is empty.
func (s *Server) Step() (task Task, ok bool) {
	return s.runOne(true)
}

// WaitIdle blocks until no task is enqueued or processing, or ctx is done. While paused with
// enqueued tasks it waits until Resume or ctx.
func (s *Server) WaitIdle(ctx context.Context) error {
	for {
		s.mu.RLock()
		idle := len(s.queue) == 0 && s.processing == nil
		changed := s.changed
		s.mu.RUnlock()
		if idle {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}
