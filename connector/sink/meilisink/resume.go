package meilisink

import (
	"cmp"
	"hash/maphash"
	"slices"
	"sync"
	"time"

	meili "github.com/meilisearch/meilisearch-go"
)

const (
	// resumeTTL bounds how long a task nobody waits on is remembered. The engine retries an
	// unavailable batch after its backoff (at most ledger.MaxBackoffDefault, 5 minutes); a
	// record older than that belongs to a batch this process no longer delivers (another
	// replica took the lease), and resuming it much later could skip a write that a replay
	// meant to repeat.
	resumeTTL = 10 * time.Minute
	// resumeCapacity bounds the documents remembered (about 100 bytes each). Forgetting is
	// always safe: the document is sent again.
	resumeCapacity = 100_000
)

// sentTask is a task Meilisearch accepted, identified by what it answered on enqueue: a
// server restarted on a fresh database numbers its tasks from 0 again, so a uid alone could
// name somebody else's task.
type sentTask struct {
	uid        int64
	index      string
	kind       meili.TaskType
	enqueuedAt time.Time
	touched    time.Time // last sent or waited on; guarded by sentLog.mu
}

func newSentTask(ti *meili.TaskInfo, now time.Time) *sentTask {
	return &sentTask{uid: ti.TaskUID, index: ti.IndexUID, kind: ti.Type, enqueuedAt: ti.EnqueuedAt, touched: now}
}

// is reports whether t is this task (nil: the server does not know the uid).
func (st *sentTask) is(t *meili.Task) bool {
	return t != nil && t.UID == st.uid && t.IndexUID == st.index && t.Type == st.kind && t.EnqueuedAt.Equal(st.enqueuedAt)
}

// sentDoc is what a task carries for one document.
type sentDoc struct {
	task *sentTask
	ver  packedVersion
	del  bool
	sum  uint64 // of the source row (see entry.sum)
}

// sentLog remembers, per document, the task that carries its last write until some Apply
// saw that task finish. When a wait is cut short (the context Apply was given ended, or
// polling failed), the retry of the batch finds its documents here and waits on the same
// tasks instead of sending them again: a second copy would make Meilisearch do the work
// twice, and Meilisearch cannot tell an old write from a new one.
type sentLog struct {
	seed maphash.Seed
	now  func() time.Time

	mu    sync.Mutex
	byDoc map[string]sentDoc // index uid + "\x00" + document id
}

func newSentLog() *sentLog {
	return &sentLog{seed: maphash.MakeSeed(), now: time.Now, byDoc: map[string]sentDoc{}}
}

func docKey(ix *index, e entry) string { return ix.uid + "\x00" + e.docID }

// rowSum fingerprints a source row. With the version it identifies a write: the document is
// projected from the row by the mapping, which does not change while the process runs (the
// document's own bytes cannot serve: its keys come in map order).
func (l *sentLog) rowSum(row []byte) uint64 { return maphash.Bytes(l.seed, row) }

// record remembers that the task st carries c.
func (l *sentLog) record(c chunk, st *sentTask) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.byDoc)+len(c.entries) > resumeCapacity {
		l.expire()
		if len(l.byDoc)+len(c.entries) > resumeCapacity {
			clear(l.byDoc)
		}
	}
	for _, e := range c.entries {
		l.byDoc[docKey(c.ix, e)] = sentDoc{task: st, ver: e.ver, del: c.del, sum: e.sum}
	}
}

// expire drops the records of tasks nobody sent or waited on within resumeTTL. l.mu is held.
func (l *sentLog) expire() {
	cutoff := l.now().Add(-resumeTTL)
	for k, d := range l.byDoc {
		if d.task.touched.Before(cutoff) {
			delete(l.byDoc, k)
		}
	}
}

// resume splits entries into those already carried by a task not yet seen to finish, one
// chunk per task, and the rest, to be sent. A record for another version or another document
// is dropped: that write is superseded (and, already in Meilisearch's queue, it is applied
// before anything sent now).
func (l *sentLog) resume(ix *index, del bool, entries []entry) (fresh []entry, resumed []enqueued) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.byDoc) == 0 {
		return entries, nil
	}
	now := l.now()
	byTask := map[*sentTask]int{}
	for _, e := range entries {
		k := docKey(ix, e)
		d, ok := l.byDoc[k]
		if !ok {
			fresh = append(fresh, e)
			continue
		}
		if d.del != del || d.ver != e.ver || d.sum != e.sum || now.Sub(d.task.touched) > resumeTTL {
			delete(l.byDoc, k)
			fresh = append(fresh, e)
			continue
		}
		d.task.touched = now
		i, ok := byTask[d.task]
		if !ok {
			i = len(resumed)
			byTask[d.task] = i
			resumed = append(resumed, enqueued{c: chunk{ix: ix, del: del}, task: d.task, resumed: true})
		}
		resumed[i].c.entries = append(resumed[i].c.entries, e)
	}
	slices.SortFunc(resumed, func(a, b enqueued) int { return cmp.Compare(a.task.uid, b.task.uid) })
	return fresh, resumed
}

// forget drops the records of f's documents that still point at its task: its outcome was
// seen, so the next write of these documents is a new one.
func (l *sentLog) forget(f enqueued) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range f.c.entries {
		k := docKey(f.c.ix, e)
		if d, ok := l.byDoc[k]; ok && d.task == f.task {
			delete(l.byDoc, k)
		}
	}
}
