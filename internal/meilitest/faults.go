package meilitest

import (
	"net/http"
)

type faultKind int

const (
	faultDrop      faultKind = iota // close the connection before handling the request
	faultHTTPError                  // answer with an HTTP error before handling the request
)

type fault struct {
	kind      faultKind
	status    int
	remaining int
	match     func(*http.Request) bool
}

// takeFault consumes one occurrence of the first pending fault of kind that matches r.
func (s *Server) takeFault(kind faultKind, r *http.Request) *fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if f.kind != kind || (f.match != nil && !f.match(r)) {
			continue
		}
		f.remaining--
		if f.remaining <= 0 {
			s.faults = append(s.faults[:i], s.faults[i+1:]...)
		}
		switch kind {
		case faultDrop:
			s.counters.DroppedConnections++
		case faultHTTPError:
			s.counters.InjectedHTTPErrors++
		}
		return f
	}
	return nil
}

func (s *Server) addFault(f *fault) {
	if f.remaining <= 0 {
		return
	}
	s.mu.Lock()
	s.faults = append(s.faults, f)
	s.mu.Unlock()
}

// InjectHTTPError makes the next n requests (any route, /health included) answer status with a
// Meilisearch error body, without being handled. 5xx statuses carry code "internal".
// meilisearch-go retries 502, 503 and 504 three times by default (after 1, 2 and 3 s), so
// n <= 3 of those is invisible to it unless retries are disabled.
func (s *Server) InjectHTTPError(status, n int) {
	s.addFault(&fault{kind: faultHTTPError, status: status, remaining: n})
}

// InjectHTTPErrorMatching is InjectHTTPError restricted to requests for which match returns
// true (match runs under the server's lock: it must not call the Server).
func (s *Server) InjectHTTPErrorMatching(status, n int, match func(*http.Request) bool) {
	s.addFault(&fault{kind: faultHTTPError, status: status, remaining: n, match: match})
}

// DropConnections makes the next n requests close their connection without an answer and
// without being handled. Note that net/http's client silently retries an idempotent request
// (GET, HEAD, …) once when a reused keep-alive connection is closed, which consumes a second
// drop; a POST surfaces the error directly.
func (s *Server) DropConnections(n int) {
	s.addFault(&fault{kind: faultDrop, remaining: n})
}

// taskFault makes tasks fail when the worker picks them.
type taskFault struct {
	code, message string
	match         func(Task) bool // nil: the next task, once
}

// FailNextTask makes the next task the worker processes fail with code and message, without
// any effect on the stored data. The error type follows the code (e.g. "internal" for
// "internal"); an empty message gets a default.
func (s *Server) FailNextTask(code, message string) {
	s.mu.Lock()
	s.taskFaults = append(s.taskFaults, &taskFault{code: code, message: message})
	s.mu.Unlock()
}

// FailTasksMatching makes every task for which match returns true fail with code, until the
// returned stop function is called. match sees the task as it starts processing and must not
// call the Server.
func (s *Server) FailTasksMatching(match func(Task) bool, code string) (stop func()) {
	tf := &taskFault{code: code, match: match}
	s.mu.Lock()
	s.taskFaults = append(s.taskFaults, tf)
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for i, f := range s.taskFaults {
			if f == tf {
				s.taskFaults = append(s.taskFaults[:i], s.taskFaults[i+1:]...)
				return
			}
		}
	}
}

// takeTaskFault returns the injected failure for t, if any. s.mu must be held for writing.
func (s *Server) takeTaskFault(t *task) *APIError {
	for i, f := range s.taskFaults {
		if f.match == nil {
			s.taskFaults = append(s.taskFaults[:i], s.taskFaults[i+1:]...)
			return injectedTaskError(f)
		}
		if f.match(t.snapshot()) {
			return injectedTaskError(f)
		}
	}
	return nil
}

func injectedTaskError(f *taskFault) *APIError {
	msg := f.message
	if msg == "" {
		msg = "meilitest: injected task failure"
	}
	return newAPIError(f.code, msg)
}
