package meilitest

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Server is the Meilisearch double. It is an http.Handler; New also serves it on a loopback
// port. All methods are safe for concurrent use.
type Server struct {
	// URL is the base URL ("http://127.0.0.1:port") once the server listens.
	URL string

	opts Options
	mux  *http.ServeMux

	mu         sync.RWMutex
	indexes    map[string]*index
	tasks      []*task // by uid; nil once deleted by a taskDeletion
	queue      []*task // enqueued tasks in FIFO order
	processing *task
	nextBatch  int64
	paused     bool
	taskDelay  time.Duration
	faults     []*fault
	taskFaults []*taskFault
	counters   Counters
	changed    chan struct{} // closed and replaced whenever task state changes

	procMu     sync.Mutex // serialises task processing between the worker and Step
	wake       chan struct{}
	done       chan struct{}
	workerDone chan struct{}
	closeOnce  sync.Once

	httpMu     sync.Mutex
	httpServer *http.Server
}

// New returns a server listening on a random loopback port, like httptest.NewServer. It panics
// if opts are invalid or it cannot listen. Close it when done.
func New(opts Options) *Server {
	s := NewUnstarted(opts)
	if err := s.Start(""); err != nil {
		panic(err)
	}
	return s
}

// NewUnstarted returns a server whose task worker runs but which does not listen: use it as an
// http.Handler, or call Start. It panics if opts are invalid. Close it when done.
func NewUnstarted(opts Options) *Server {
	s, err := newServer(opts)
	if err != nil {
		panic(err)
	}
	return s
}

func newServer(opts Options) (*Server, error) {
	opts = opts.WithDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	s := &Server{
		opts:       opts,
		mux:        http.NewServeMux(),
		indexes:    make(map[string]*index),
		taskDelay:  opts.TaskDelay,
		counters:   newCounters(),
		changed:    make(chan struct{}),
		wake:       make(chan struct{}, 1),
		done:       make(chan struct{}),
		workerDone: make(chan struct{}),
	}
	s.routes()
	go s.work()
	return s, nil
}

// Start serves the server on addr (host:port; "" means a random loopback port) in the
// background and sets URL.
func (s *Server) Start(addr string) error {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	s.httpMu.Lock()
	defer s.httpMu.Unlock()
	if s.httpServer != nil {
		return errors.New("meilitest: server already started")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("meilitest: listening on %s: %w", addr, err)
	}
	s.httpServer = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	s.URL = "http://" + dialableAddr(ln.Addr())
	srv := s.httpServer
	go func() { _ = srv.Serve(ln) }()
	return nil
}

// dialableAddr turns a wildcard listen address into one a client can dial.
func dialableAddr(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok || !tcp.IP.IsUnspecified() {
		return a.String()
	}
	return net.JoinHostPort("127.0.0.1", fmt.Sprint(tcp.Port))
}

// Close stops serving and stops the task worker. Enqueued tasks stay enqueued. Close may be
// called more than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.done)
		s.httpMu.Lock()
		if s.httpServer != nil {
			_ = s.httpServer.Close()
		}
		s.httpMu.Unlock()
		<-s.workerDone
	})
}

// request is what a route handler sees: the HTTP request and its decoded body.
type request struct {
	*http.Request
	body []byte
}

// reply is what a route handler returns; body is JSON (nil for none).
type reply struct {
	status int
	body   []byte
}

func jsonReply(status int, v any) reply {
	b, err := json.Marshal(v)
	if err != nil {
		return errorReply(apiErrorf(CodeInternal, "encoding response: %v", err))
	}
	return reply{status: status, body: b}
}

func errorReply(e *APIError) reply {
	b, _ := json.Marshal(e)
	return reply{status: e.status(), body: b}
}

func (s *Server) handle(pattern string, fn func(*request) reply) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		body, apiErr := s.readBody(r)
		if apiErr != nil {
			s.writeReply(w, r, errorReply(apiErr))
			return
		}
		rep := fn(&request{Request: r, body: body})
		s.writeReply(w, r, rep)
	})
}

func (s *Server) routes() {
	s.handle("GET /health", s.getHealth)
	s.handle("GET /version", s.getVersion)
	s.handle("GET /stats", s.getStats)

	s.handle("GET /indexes", s.listIndexes)
	s.handle("POST /indexes", s.postIndex)
	s.handle("GET /indexes/{uid}", s.getIndex)
	s.handle("PATCH /indexes/{uid}", s.patchIndex)
	s.handle("DELETE /indexes/{uid}", s.deleteIndex)
	s.handle("GET /indexes/{uid}/stats", s.getIndexStats)

	s.handle("GET /indexes/{uid}/settings", s.getSettings)
	s.handle("PATCH /indexes/{uid}/settings", s.patchSettings)
	s.handle("DELETE /indexes/{uid}/settings", s.resetSettings)
	for _, sr := range settingRoutes {
		key := sr.key
		path := "/indexes/{uid}/settings/" + sr.slug
		s.handle("GET "+path, func(rq *request) reply { return s.getSetting(rq, key) })
		s.handle(sr.method+" "+path, func(rq *request) reply { return s.putSetting(rq, key) })
		s.handle("DELETE "+path, func(rq *request) reply { return s.resetSetting(rq, key) })
	}

	// Of the document routes only the two the sink calls: add (replace) and delete-batch.
	s.handle("POST /indexes/{uid}/documents", s.postDocuments)
	s.handle("POST /indexes/{uid}/documents/delete-batch", s.deleteDocumentsBatch)

	s.handle("GET /tasks", s.listTasks)
	s.handle("GET /tasks/{uid}", s.getTask)
	s.handle("POST /tasks/cancel", s.cancelTasks)
	s.handle("DELETE /tasks", s.deleteTasks)
}

// ServeHTTP counts the request, applies injected faults, authenticates, then routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, pattern := s.mux.Handler(r)
	s.mu.Lock()
	s.counters.Requests++
	key := pattern
	if key == "" {
		key = "unmatched"
	}
	s.counters.RequestsByRoute[key]++
	s.mu.Unlock()

	if s.takeFault(faultDrop, r) != nil {
		abortConnection(w)
		return
	}
	if f := s.takeFault(faultHTTPError, r); f != nil {
		e := newAPIError(injectedErrorCode(f.status), fmt.Sprintf("meilitest: injected HTTP %d %s", f.status, http.StatusText(f.status)))
		rep := errorReply(e)
		rep.status = f.status
		s.writeReply(w, r, rep)
		return
	}
	if r.URL.Path != "/health" {
		if e := s.authenticate(r); e != nil {
			s.writeReply(w, r, errorReply(e))
			return
		}
	}
	if pattern == "" {
		if s.methodNotAllowed(r) {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		s.writeReply(w, r, errorReply(newAPIError(CodeNotFound, "Not found.")))
		return
	}
	s.mux.ServeHTTP(w, r)
}

func (s *Server) methodNotAllowed(r *http.Request) bool {
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		r2 := new(http.Request)
		*r2 = *r
		r2.Method = m
		if _, p := s.mux.Handler(r2); p != "" {
			return true
		}
	}
	return false
}

// authenticate enforces the master key the way Meilisearch does: no key configured means every
// request is accepted, whatever its Authorization header.
func (s *Server) authenticate(r *http.Request) *APIError {
	if s.opts.MasterKey == "" {
		return nil
	}
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || strings.TrimSpace(token) == "" {
		return newAPIError(CodeMissingAuthorizationHeader, "The Authorization header is missing. It must use the bearer authorization method.")
	}
	if subtle.ConstantTimeCompare([]byte(strings.TrimSpace(token)), []byte(s.opts.MasterKey)) != 1 {
		return newAPIError(CodeInvalidAPIKey, "The provided API key is invalid.")
	}
	return nil
}

// abortConnection closes the client connection without an answer.
func abortConnection(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

func (s *Server) getHealth(*request) reply {
	return jsonReply(http.StatusOK, map[string]string{"status": "available"})
}

func (s *Server) getVersion(*request) reply {
	return jsonReply(http.StatusOK, map[string]string{
		"commitSha":  "meilitest",
		"commitDate": "unknown",
		"pkgVersion": s.opts.Version,
	})
}

// notify wakes everything waiting on a task state change. s.mu must be held for writing.
func (s *Server) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Server) now() time.Time { return s.opts.Now().UTC() }
