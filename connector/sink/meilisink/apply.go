package meilisink

import (
	"context"
	"errors"
	"fmt"

	meili "github.com/meilisearch/meilisearch-go"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/connector/sink"
	"github.com/appwrite-sync/appwrite-sync/mapping"
)

// entry is one item on its way to an index: a document to add, or an id to delete.
type entry struct {
	idx   int    // position in the claimed batch
	docID string // Meilisearch document id (encoded)
	doc   []byte // JSON document; nil for a delete
	ver   packedVersion
	sum   uint64 // of the source row: with ver, what the write is (see sentLog)
}

// chunk is what one task carries: documents to add to one index, or ids to delete from it.
type chunk struct {
	ix      *index
	del     bool
	entries []entry
}

// group is everything a batch writes to one index.
type group struct {
	ix   *index
	adds []entry
	dels []entry
}

// Apply implements sink.Sink. It projects the items, writes each index with as few tasks as
// the batch limits allow (documents are replaced whole, deletes go by encoded id), and returns
// once every task finished. A failed task is split in halves and re-sent until the documents
// at fault are isolated; those come back in a *connector.BatchError with Meilisearch's code and
// message, and everything else is applied.
func (s *Sink) Apply(ctx context.Context, items []sink.Item) error {
	be := &connector.BatchError{}
	groups := map[*index]*group{}
	problems := map[*index]error{} // per index: nil when usable
	var order []*group
	for i, it := range items {
		t := s.m.Lookup(it.Key)
		if t == nil || t.Meili == nil {
			continue // no longer indexed: nothing to do
		}
		ix := s.byUID[t.Meili.Index]
		problem, checked := problems[ix]
		if !checked {
			problem = s.usable(ctx, ix)
			var p *indexProblem
			if problem != nil && !errors.As(problem, &p) {
				return problem // Meilisearch could not be asked
			}
			problems[ix] = problem
		}
		if problem != nil {
			be.Fail(i, connector.Permanent(reasonIndexMisconfigured, problem))
			continue
		}
		e, del, err := s.project(t, it)
		if err != nil {
			be.Fail(i, err)
			continue
		}
		if e == nil {
			continue // nothing to write (see project)
		}
		e.idx, e.sum = i, s.sent.rowSum(it.Row)
		if s.guard.stale(ix.uid+"\x00"+e.docID, e.ver) {
			continue // this process already wrote a newer version of the document
		}
		g := groups[ix]
		if g == nil {
			g = &group{ix: ix}
			groups[ix] = g
			order = append(order, g)
		}
		if del {
			g.dels = append(g.dels, *e)
		} else {
			g.adds = append(g.adds, *e)
		}
	}
	var (
		chunks  []chunk
		resumed []enqueued
	)
	for _, g := range order {
		adds, radds := s.sent.resume(g.ix, false, g.adds)
		dels, rdels := s.sent.resume(g.ix, true, g.dels)
		resumed = append(append(resumed, radds...), rdels...)
		chunks = append(chunks, s.split(g.ix, false, adds)...)
		chunks = append(chunks, s.split(g.ix, true, dels)...)
	}
	if err := s.write(ctx, chunks, resumed, be); err != nil {
		return err
	}
	if len(be.Failed) > 0 {
		return be
	}
	return nil
}

// project turns an item into the entry to write: a delete for a delete op or a row that no
// longer matches the mapping's `where`, else the projected document. A nil entry means there
// is nothing to write: the delete of an id that cannot be a document id (no document can
// hold it).
func (s *Sink) project(t *mapping.Table, it sink.Item) (*entry, bool, error) {
	var row mapping.Row
	del := it.Version.Op == connector.OpDelete
	if !del {
		var err error
		if row, err = t.DecodeRowForMeili(it.Row); err != nil {
			return nil, false, err // permanent, with its reason
		}
		del = !t.Matches(row)
	}
	if del {
		id := t.MeiliID(it.Key, it.RowID, EncodeID)
		if !ValidID(id) {
			return nil, true, nil
		}
		return &entry{docID: id, ver: pack(it)}, true, nil
	}
	doc, err := t.MeiliDocument(row, it.Key, EncodeID)
	if err != nil {
		if !connector.IsPermanent(err) {
			err = connector.Permanent("projecting the row for meilisearch", err)
		}
		return nil, false, err
	}
	id, _ := doc[t.Meili.PrimaryKey].(string)
	if !ValidID(id) {
		return nil, false, connector.Permanent(reasonIDTooLong,
			fmt.Errorf("its encoding is %d bytes, more than Meilisearch's %d", len(id), MaxIDBytes))
	}
	b, err := mapping.AppendDocument(make([]byte, 0, len(it.Row)), doc)
	if err != nil {
		return nil, false, connector.Permanent(reasonDocumentUnencodable, err)
	}
	return &entry{docID: id, doc: b, ver: pack(it)}, false, nil
}

// split cuts entries into chunks of at most BatchSize entries and BatchBytes of body.
func (s *Sink) split(ix *index, del bool, entries []entry) []chunk {
	var out []chunk
	start, size := 0, 2 // "[" and "]"
	for i, e := range entries {
		n := len(e.doc) + 1 // the comma
		if del {
			n = len(e.docID) + 3 // quotes and comma
		}
		if i > start && (i-start >= s.opts.BatchSize || size+n > s.opts.BatchBytes) {
			out = append(out, chunk{ix: ix, del: del, entries: entries[start:i]})
			start, size = i, 2
		}
		size += n
	}
	if start < len(entries) {
		out = append(out, chunk{ix: ix, del: del, entries: entries[start:]})
	}
	return out
}

// enqueued is a chunk whose task Meilisearch accepted.
type enqueued struct {
	c    chunk
	task *sentTask
	// resumed: the task was enqueued by an earlier Apply whose wait was cut short, and may
	// carry more documents than c (those of the batch that are still current).
	resumed bool
}

// write waits for the resumed tasks (see sentLog) and enqueues every chunk, waits for the
// tasks and settles them; failed chunks are halved and re-sent, round after round, until the
// entries at fault are alone. Chunks never share a document (a row is in one batch at most,
// and once in it), so re-sending halves after later chunks cannot reorder writes of one
// document; a resumed task was enqueued before anything this Apply sends.
func (s *Sink) write(ctx context.Context, chunks []chunk, resumed []enqueued, be *connector.BatchError) error {
	inFlight := resumed
	for len(chunks) > 0 || len(inFlight) > 0 {
		for len(chunks) > 0 {
			c := chunks[0]
			chunks = chunks[1:]
			ti, err := s.send(ctx, c)
			if err == nil {
				f := enqueued{c: c, task: newSentTask(ti, s.sent.now())}
				s.sent.record(c, f.task)
				inFlight = append(inFlight, f)
				continue
			}
			if me, ok := apiError(err); ok && !c.del &&
				(string(me.APIError.Code) == codePayloadTooLarge || string(me.APIError.Code) == codeMalformedPayload) {
				// Refused on sight because of its content: split it like a failed task.
				if len(c.entries) == 1 {
					be.Fail(c.entries[0].idx, connector.Permanent(reasonRejected,
						fmt.Errorf("%s: %s", me.APIError.Code, me.APIError.Message)))
					continue
				}
				chunks = append(halves(c), chunks...)
				continue
			}
			return classify(sendWhat(c), err)
		}
		uids := make([]int64, len(inFlight))
		for i, f := range inFlight {
			uids[i] = f.task.uid
		}
		// On error (the context ended, polling failed) the tasks stay in s.sent: the retry of
		// the batch waits on them again.
		tasks, err := s.poll.wait(ctx, uids)
		if err != nil {
			return err
		}
		for _, f := range inFlight {
			retry, err := s.settle(f, tasks[f.task.uid], be)
			if err != nil {
				return err
			}
			chunks = append(chunks, retry...)
		}
		inFlight = nil
	}
	return nil
}

// settle records a finished task's outcome and returns the chunks to (re-)send: the halves
// of a failed task, or the documents of a resumed task that did not succeed.
func (s *Sink) settle(f enqueued, t *meili.Task, be *connector.BatchError) ([]chunk, error) {
	c := f.c
	s.sent.forget(f)
	if !f.task.is(t) {
		if f.resumed {
			return []chunk{c}, nil
		}
		// Lost between the answer and the first poll: send it again after a backoff, in
		// case the server keeps losing what it accepts.
		return nil, fmt.Errorf("%w: meilisearch task %d (%s on index %s) is unknown to the server (restarted without its data?); the batch is retried",
			connector.ErrSinkUnavailable, f.task.uid, kind(c), c.ix.uid)
	}
	if f.resumed && t.Status != meili.TaskStatusSucceeded {
		// Send them again as new: how the first task failed says nothing certain about
		// these documents (it may have carried others).
		return []chunk{c}, nil
	}
	switch t.Status {
	case meili.TaskStatusSucceeded:
		s.applied(c)
		return nil, nil
	case meili.TaskStatusCanceled:
		return nil, fmt.Errorf("meilisearch task %d (%s on index %s) was canceled; the batch is retried", t.UID, kind(c), c.ix.uid)
	}
	code := string(t.Error.Code)
	switch {
	case c.del && code == codeIndexNotFound:
		s.applied(c) // no index, no document to delete
		return nil, nil
	case taskErrorIsSystem(t):
		return nil, fmt.Errorf("%w: meilisearch task %d (%s on index %s) failed: %s (%s)",
			connector.ErrSinkUnavailable, t.UID, kind(c), c.ix.uid, t.Error.Message, code)
	case code == codePrimaryKeyExists:
		// The index changed under us: refuse its rows until the operator fixes it.
		c.ix.mu.Lock()
		c.ix.ready, c.ix.problem = false, nil
		c.ix.mu.Unlock()
		return nil, fmt.Errorf("meilisearch task %d on index %s failed: %s (%s); the index is checked again", t.UID, c.ix.uid, t.Error.Message, code)
	case c.del:
		return nil, fmt.Errorf("meilisearch task %d (delete on index %s) failed: %s (%s)", t.UID, c.ix.uid, t.Error.Message, code)
	case len(c.entries) == 1:
		be.Fail(c.entries[0].idx, connector.Permanent(reasonRejected,
			fmt.Errorf("task %d failed with %s: %s", t.UID, code, t.Error.Message)))
		return nil, nil
	}
	return halves(c), nil
}

// applied remembers the versions a succeeded task wrote.
func (s *Sink) applied(c chunk) {
	for _, e := range c.entries {
		s.guard.written(c.ix.uid+"\x00"+e.docID, e.ver)
	}
}

func halves(c chunk) []chunk {
	mid := len(c.entries) / 2
	return []chunk{
		{ix: c.ix, del: c.del, entries: c.entries[:mid]},
		{ix: c.ix, del: c.del, entries: c.entries[mid:]},
	}
}

func kind(c chunk) string {
	if c.del {
		return "delete"
	}
	return "add"
}

func sendWhat(c chunk) string {
	return fmt.Sprintf("sending %d document %s(s) to index %s", len(c.entries), kind(c), c.ix.uid)
}

// send enqueues one chunk's task: documents are added with the explicit primary key
// (replacing whole documents), deletes go through delete-batch with the encoded ids.
func (s *Sink) send(ctx context.Context, c chunk) (*meili.TaskInfo, error) {
	rctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	idx := s.client.Index(c.ix.uid) // one IndexManager per operation: they are not goroutine-safe
	var (
		ti  *meili.TaskInfo
		err error
	)
	if c.del {
		ids := make([]string, len(c.entries))
		for i, e := range c.entries {
			ids[i] = e.docID
		}
		ti, err = idx.DeleteDocuments(rctx, ids, nil)
	} else {
		size := 1
		for _, e := range c.entries {
			size += len(e.doc) + 1
		}
		body := make([]byte, 0, size)
		body = append(body, '[')
		for i, e := range c.entries {
			if i > 0 {
				body = append(body, ',')
			}
			body = append(body, e.doc...)
		}
		body = append(body, ']')
		pk := c.ix.primaryKey
		// A []byte body is sent as is: the documents were encoded once, and halves re-use them.
		ti, err = idx.AddDocuments(rctx, body, &meili.DocumentOptions{PrimaryKey: &pk})
	}
	if err != nil {
		return nil, err
	}
	return ti, nil
}
