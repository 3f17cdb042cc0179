package meilitest

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// taskQuery is the filter of GET /tasks, POST /tasks/cancel and DELETE /tasks.
type taskQuery struct {
	uids, batchUIDs, canceledBy map[int64]bool
	statuses                    map[TaskStatus]bool
	types                       map[TaskType]bool
	indexUIDs                   map[string]bool
	before, after               [3]*time.Time // enqueuedAt, startedAt, finishedAt
	limit                       int
	from                        *int64
	reverse                     bool
	filtered                    bool // at least one filter parameter was given
}

var taskFilterParams = []string{
	"uids", "batchUids", "canceledBy", "types", "statuses", "indexUids",
	"afterEnqueuedAt", "beforeEnqueuedAt", "afterStartedAt", "beforeStartedAt",
	"afterFinishedAt", "beforeFinishedAt",
}

func parseTaskQuery(q url.Values, listing bool) (*taskQuery, *APIError) {
	allowed := taskFilterParams
	if listing {
		allowed = append([]string{"limit", "from", "reverse"}, taskFilterParams...)
	}
	if e := checkParams(q, allowed...); e != nil {
		return nil, e
	}
	tq := &taskQuery{limit: 20}
	ints := func(name, code string) (map[int64]bool, *APIError) {
		v, ok := q[name]
		if !ok {
			return nil, nil
		}
		tq.filtered = true
		if strings.TrimSpace(v[0]) == "*" {
			return nil, nil
		}
		set := map[int64]bool{}
		for _, part := range strings.Split(v[0], ",") {
			n, err := strconv.ParseInt(strings.TrimSpace(part), 10, 64)
			if err != nil || n < 0 {
				return nil, apiErrorf(code, "Invalid value in parameter `%s`: could not parse `%s` as a positive integer", name, part)
			}
			set[n] = true
		}
		return set, nil
	}
	var e *APIError
	if tq.uids, e = ints("uids", CodeInvalidTaskUIDs); e != nil {
		return nil, e
	}
	if tq.batchUIDs, e = ints("batchUids", "invalid_task_batch_uids"); e != nil {
		return nil, e
	}
	if tq.canceledBy, e = ints("canceledBy", CodeInvalidTaskCanceledBy); e != nil {
		return nil, e
	}
	strs := func(name string) []string {
		v, ok := q[name]
		if !ok {
			return nil
		}
		tq.filtered = true
		var out []string
		for _, part := range strings.Split(v[0], ",") {
			if part = strings.TrimSpace(part); part == "*" {
				return nil
			} else if part != "" {
				out = append(out, part)
			}
		}
		return out
	}
	if list := strs("statuses"); list != nil {
		tq.statuses = map[TaskStatus]bool{}
		for _, st := range list {
			if !validStatus(st) {
				return nil, apiErrorf(CodeInvalidTaskStatuses, "Invalid value in parameter `statuses`: `%s` is not a valid task status. Available statuses are `enqueued`, `processing`, `succeeded`, `failed`, `canceled`.", st)
			}
			tq.statuses[TaskStatus(st)] = true
		}
	}
	if list := strs("types"); list != nil {
		tq.types = map[TaskType]bool{}
		for _, ty := range list {
			if !validType(ty) {
				return nil, apiErrorf(CodeInvalidTaskTypes, "Invalid value in parameter `types`: `%s` is not a valid task type. Available types are `%s`.", ty, strings.Join(knownTaskTypes, "`, `"))
			}
			tq.types[TaskType(ty)] = true
		}
	}
	if list := strs("indexUids"); list != nil {
		tq.indexUIDs = map[string]bool{}
		for _, uid := range list {
			if !validIndexUID(uid) {
				return nil, invalidIndexUID(uid, "Invalid value in parameter `indexUids`: ")
			}
			tq.indexUIDs[uid] = true
		}
	}
	dates := []struct {
		name, code string
		slot       **time.Time
	}{
		{"beforeEnqueuedAt", CodeInvalidTaskBeforeEnqueuedAt, &tq.before[0]},
		{"afterEnqueuedAt", CodeInvalidTaskAfterEnqueuedAt, &tq.after[0]},
		{"beforeStartedAt", CodeInvalidTaskBeforeStartedAt, &tq.before[1]},
		{"afterStartedAt", CodeInvalidTaskAfterStartedAt, &tq.after[1]},
		{"beforeFinishedAt", CodeInvalidTaskBeforeFinishedAt, &tq.before[2]},
		{"afterFinishedAt", CodeInvalidTaskAfterFinishedAt, &tq.after[2]},
	}
	for _, d := range dates {
		v, ok := q[d.name]
		if !ok {
			continue
		}
		tq.filtered = true
		if v[0] == "*" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, v[0])
		if err != nil {
			t, err = time.Parse("2006-01-02", v[0])
		}
		if err != nil {
			return nil, apiErrorf(d.code, "Invalid value in parameter `%s`: `%s` is an invalid date-time. It should follow the YYYY-MM-DD or RFC 3339 date-time format.", d.name, v[0])
		}
		*d.slot = &t
	}
	if listing {
		var err *APIError
		if tq.limit, err = queryInt(q, "limit", 20, CodeInvalidTaskLimit); err != nil {
			return nil, err
		}
		if v, ok := q["from"]; ok {
			n, err := strconv.ParseInt(v[0], 10, 64)
			if err != nil || n < 0 {
				return nil, apiErrorf(CodeInvalidTaskFrom, "Invalid value in parameter `from`: could not parse `%s` as a positive integer", v[0])
			}
			tq.from = &n
		}
		if v, ok := q["reverse"]; ok {
			b, err := strconv.ParseBool(v[0])
			if err != nil {
				return nil, apiErrorf(CodeInvalidTaskReverse, "Invalid value in parameter `reverse`: could not parse `%s` as a boolean, expected either `true` or `false`", v[0])
			}
			tq.reverse = b
		}
	}
	return tq, nil
}

func validStatus(s string) bool {
	for _, st := range taskStatuses {
		if string(st) == s {
			return true
		}
	}
	return false
}

func validType(s string) bool {
	for _, t := range knownTaskTypes {
		if t == s {
			return true
		}
	}
	return false
}

func (tq *taskQuery) match(t *task) bool {
	if tq.uids != nil && !tq.uids[t.uid] {
		return false
	}
	if tq.batchUIDs != nil && (t.batchUID == nil || !tq.batchUIDs[*t.batchUID]) {
		return false
	}
	if tq.canceledBy != nil && (t.canceledBy == nil || !tq.canceledBy[*t.canceledBy]) {
		return false
	}
	if tq.statuses != nil && !tq.statuses[t.status] {
		return false
	}
	if tq.types != nil && !tq.types[t.kind] {
		return false
	}
	if tq.indexUIDs != nil && !tq.indexUIDs[t.indexUID] {
		return false
	}
	for i, at := range []time.Time{t.enqueuedAt, t.startedAt, t.finishedAt} {
		if tq.before[i] != nil && (at.IsZero() || !at.Before(*tq.before[i])) {
			return false
		}
		if tq.after[i] != nil && (at.IsZero() || !at.After(*tq.after[i])) {
			return false
		}
	}
	return true
}

// listTasks answers GET /tasks: newest first (oldest first with reverse=true), paginated by
// task uid with from/next.
func (s *Server) listTasks(rq *request) reply {
	tq, e := parseTaskQuery(rq.URL.Query(), true)
	if e != nil {
		return errorReply(e)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	results := []taskView{}
	var next *int64
	total := 0
	visit := func(t *task) {
		if t == nil || !tq.match(t) {
			return
		}
		total++
		if tq.from != nil && ((!tq.reverse && t.uid > *tq.from) || (tq.reverse && t.uid < *tq.from)) {
			return
		}
		if len(results) < tq.limit {
			results = append(results, t.view())
		} else if next == nil {
			uid := t.uid
			next = &uid
		}
	}
	if tq.reverse {
		for _, t := range s.tasks {
			visit(t)
		}
	} else {
		for i := len(s.tasks) - 1; i >= 0; i-- {
			visit(s.tasks[i])
		}
	}
	var from *int64
	if len(results) > 0 {
		uid := results[0].UID
		from = &uid
	}
	return jsonReply(http.StatusOK, map[string]any{"results": results, "total": total, "limit": tq.limit, "from": from, "next": next})
}

func (s *Server) getTask(rq *request) reply {
	raw := rq.PathValue("uid")
	uid, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || uid < 0 {
		return errorReply(apiErrorf(CodeInvalidTaskUIDs, "Invalid value in parameter `taskUid`: could not parse `%s` as a positive integer", raw))
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if uid >= int64(len(s.tasks)) || s.tasks[uid] == nil {
		return errorReply(apiErrorf(CodeTaskNotFound, "Task `%d` not found.", uid))
	}
	return jsonReply(http.StatusOK, s.tasks[uid].view())
}

// matchingTasks returns the uids of the tasks tq selects. s.mu must be held.
func (s *Server) matchingTasks(tq *taskQuery) []int64 {
	var uids []int64
	for _, t := range s.tasks {
		if t != nil && tq.match(t) {
			uids = append(uids, t.uid)
		}
	}
	return uids
}

func (s *Server) cancelTasks(rq *request) reply {
	return s.taskAdmin(rq, TaskCancelation, "canceledTasks", "cancel")
}

func (s *Server) deleteTasks(rq *request) reply {
	return s.taskAdmin(rq, TaskDeletion, "deletedTasks", "delete")
}

// taskAdmin enqueues a taskCancelation or taskDeletion. Meilisearch answers these with 200
// (not 202) and a summarized task whose indexUid is null.
func (s *Server) taskAdmin(rq *request, kind TaskType, resultKey, verb string) reply {
	tq, e := parseTaskQuery(rq.URL.Query(), false)
	if e != nil {
		return errorReply(e)
	}
	if !tq.filtered {
		return errorReply(apiErrorf(CodeMissingTaskFilters, "Query parameters to filter the tasks to %s are missing. Available query parameters are: `%s`.", verb, strings.Join(taskFilterParams, "`, `")))
	}
	s.mu.RLock()
	matched := s.matchingTasks(tq)
	s.mu.RUnlock()
	d := details{{"matchedTasks", int64(len(matched))}, {resultKey, nil}, {"originalFilter", "?" + rq.URL.RawQuery}}
	t := s.enqueue("", kind, d, &taskAdminOp{uids: matched, cancel: kind == TaskCancelation, resultKey: resultKey}, "")
	return jsonReply(http.StatusOK, t)
}

// taskAdminOp cancels the matched tasks still enqueued, or deletes the matched tasks already
// finished.
type taskAdminOp struct {
	uids      []int64
	cancel    bool
	resultKey string
}

func (op *taskAdminOp) failed() details { return details{{op.resultKey, int64(0)}} }

func (op *taskAdminOp) apply(s *Server, t *task) (details, *APIError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	now := s.now()
	for _, uid := range op.uids {
		target := s.tasks[uid]
		if target == nil {
			continue
		}
		if op.cancel {
			if target.status != TaskEnqueued {
				continue
			}
			for i, q := range s.queue {
				if q == target {
					s.queue = append(s.queue[:i], s.queue[i+1:]...)
					break
				}
			}
			by := t.uid
			target.status = TaskCanceled
			target.canceledBy = &by
			target.finishedAt = now
			for _, d := range target.op.failed() {
				target.details.set(d.key, d.value)
			}
			target.op = nil
			s.counters.TasksByStatus[TaskCanceled]++
			n++
			continue
		}
		if target.finished() {
			s.tasks[uid] = nil
			n++
		}
	}
	return details{{op.resultKey, int64(n)}}, nil
}
