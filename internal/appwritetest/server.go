// Package appwritetest is an in-process double of the Appwrite REST API for tests and
// benchmarks of package appwrite and its users (backfill, reconcile).
//
// It serves what backfill needs, as Appwrite 1.7–1.9 do (see shared/docs/appwrite.md):
//
//	GET /v1/tablesdb/{db}/tables/{table}/rows[/{rowId}]          (not in Legacy mode)
//	GET /v1/databases/{db}/collections/{collection}/documents[/{id}]
//	GET /v1/webhooks/{id}                                        (Version 1.9+ only)
//	PUT /v1/webhooks/{id}                                        (Version 1.9+ only)
//
// with Appwrite's checks in Appwrite's order: project (404 project_not_found), API key (401
// user_unauthorized; no key at all means a guest who only sees rows with read("any")), key
// scopes (401 general_unauthorized_scope), database, table, queries (400
// general_query_invalid), cursor (400 general_cursor_not_found). Queries are Appwrite's JSON
// queries: limit, offset, orderAsc/orderDesc, equal, notEqual, greaterThan(Equal),
// lessThan(Equal) on $sequence (numeric, values as strings), $updatedAt/$createdAt (instants),
// $id, cursorAfter, select. Counting stops at 5000 and total=false (1.8.1+) skips it.
//
// Rows are kept sorted by $sequence, so keyset pages are found by binary search; Seed adds
// millions of rows cheaply (their columns are generated when rendered).
//
// Test controls: Put, Delete, Rows, Seed, CreateTable, the clock (SetNow, Advance), faults
// (InjectError, Inject, Hang, SetLatency), SetWebhook, Webhook, Stats and Requests.
package appwritetest

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/appwrite-sync/appwrite-sync/connector"
)

// Defaults of Options.
const (
	ProjectDefault       = "test-project"
	APIKeyDefault        = "standard_test-key"
	VersionDefault       = "1.8.1"
	LegacyVersionDefault = "1.7.4"
)

// DefaultScopes are the key's scopes when Options.Scopes is nil.
var DefaultScopes = []string{"databases.read", "tables.read", "rows.read", "collections.read", "documents.read", "webhooks.read"}

// Options configures a Server. The zero value is an Appwrite 1.8.1 with one full-scope key.
type Options struct {
	// Project is the only project id accepted in X-Appwrite-Project. Default ProjectDefault.
	Project string
	// APIKey is the only key accepted in X-Appwrite-Key. Default APIKeyDefault.
	APIKey string
	// Scopes are the key's scopes. Default DefaultScopes; an empty non-nil slice means none.
	Scopes []string
	// Legacy serves only the legacy Databases routes, answering 404 general_route_not_found
	// on TablesDB routes, like servers before 1.8.
	Legacy bool
	// Version is reported in error bodies and decides version-dependent behaviour
	// (total=false from 1.8.1, GET /v1/webhooks/{id} from 1.9.0). Default VersionDefault, or
	// LegacyVersionDefault with Legacy.
	Version string
	// SequenceAsString writes $sequence as a JSON string (1.9+) instead of a number (1.8).
	SequenceAsString bool
	// Start is the initial clock. Default 2026-01-01T00:00:00Z.
	Start time.Time
}

// Server is a running double. Create it with New; Close it when done.
type Server struct {
	// URL is the API root including /v1, ready to use as appwrite.Options.Endpoint.
	URL string

	opts    Options
	version [3]int
	scopes  map[string]bool
	srv     *httptest.Server
	closed  chan struct{}
	once    sync.Once

	mu       sync.RWMutex
	dbs      map[string]bool
	tables   map[connector.TableKey]*table
	webhooks map[string]Webhook
	now      time.Time

	fmu     sync.Mutex
	faults  []Fault
	hangs   int
	latency time.Duration

	stats struct {
		requests, lists, gets, webhooks, tablesDB, legacy, errors, hung atomic.Int64
	}
	lmu sync.Mutex
	log []Request
}

// New starts a double on a loopback port.
func New(opts Options) *Server {
	if opts.Project == "" {
		opts.Project = ProjectDefault
	}
	if opts.APIKey == "" {
		opts.APIKey = APIKeyDefault
	}
	if opts.Scopes == nil {
		opts.Scopes = DefaultScopes
	}
	if opts.Version == "" {
		opts.Version = VersionDefault
		if opts.Legacy {
			opts.Version = LegacyVersionDefault
		}
	}
	if opts.Start.IsZero() {
		opts.Start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	s := &Server{
		opts:     opts,
		version:  parseVersion(opts.Version),
		scopes:   map[string]bool{},
		closed:   make(chan struct{}),
		dbs:      map[string]bool{},
		tables:   map[connector.TableKey]*table{},
		webhooks: map[string]Webhook{},
		now:      opts.Start.Truncate(time.Millisecond),
	}
	for _, sc := range opts.Scopes {
		s.scopes[sc] = true
	}
	mux := http.NewServeMux()
	if !opts.Legacy {
		mux.HandleFunc("GET /v1/tablesdb/{db}/tables/{table}/rows", s.handleList(false))
		mux.HandleFunc("GET /v1/tablesdb/{db}/tables/{table}/rows/{row}", s.handleGet(false))
	} else {
		routeMissing := func(w http.ResponseWriter, r *http.Request) {
			s.stats.tablesDB.Add(1)
			s.fail(w, r, http.StatusNotFound, "general_route_not_found",
				"The requested route was not found. Please refer to the API docs and try again.")
		}
		mux.HandleFunc("GET /v1/tablesdb/{db}/tables/{table}/rows", routeMissing)
		mux.HandleFunc("GET /v1/tablesdb/{db}/tables/{table}/rows/{row}", routeMissing)
	}
	mux.HandleFunc("GET /v1/databases/{db}/collections/{table}/documents", s.handleList(true))
	mux.HandleFunc("GET /v1/databases/{db}/collections/{table}/documents/{row}", s.handleGet(true))
	if !opts.Legacy && s.atLeast(1, 9, 0) {
		mux.HandleFunc("GET /v1/webhooks/{id}", s.handleWebhook)
		mux.HandleFunc("PUT /v1/webhooks/{id}", s.handleUpdateWebhook)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, http.StatusNotFound, "general_route_not_found",
			"The requested route was not found. Please refer to the API docs and try again.")
	})
	s.srv = httptest.NewServer(s.wrap(mux))
	s.URL = s.srv.URL + "/v1"
	return s
}

// Close releases hanging requests and stops the server. Safe to call twice.
func (s *Server) Close() {
	s.once.Do(func() {
		close(s.closed)
		s.srv.CloseClientConnections()
		s.srv.Close()
	})
}

// Client returns an HTTP client for the server (plain http.Client on loopback).
func (s *Server) Client() *http.Client { return s.srv.Client() }

// Addr is the listener's address.
func (s *Server) Addr() net.Addr { return s.srv.Listener.Addr() }

// wrap applies the request-level faults (hang, latency) and records the request.
func (s *Server) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.stats.requests.Add(1)
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		defer s.record(r, rec)
		if s.takeHang() {
			s.stats.hung.Add(1)
			rec.status = 0
			select {
			case <-r.Context().Done():
			case <-s.closed:
			}
			panic(http.ErrAbortHandler) // drop the connection without answering
		}
		if d := s.currentLatency(); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				panic(http.ErrAbortHandler)
			case <-s.closed:
				t.Stop()
				panic(http.ErrAbortHandler)
			}
		}
		next.ServeHTTP(rec, r)
	})
}

type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// Request is one request the double received.
type Request struct {
	Method string
	Path   string
	// Queries are the queries[] values as sent (JSON strings).
	Queries []string
	// Total is the total parameter as sent ("" when absent).
	Total string
	// Status is the answer's status; 0 when the request hung.
	Status int
}

const maxLog = 10000

func (s *Server) record(r *http.Request, rec *recorder) {
	if rec.status >= 400 {
		s.stats.errors.Add(1)
	}
	q := r.URL.Query()
	req := Request{Method: r.Method, Path: r.URL.Path, Queries: queryValues(q), Total: q.Get("total"), Status: rec.status}
	s.lmu.Lock()
	defer s.lmu.Unlock()
	if len(s.log) >= maxLog {
		s.log = append(s.log[:0], s.log[len(s.log)-maxLog/2:]...)
	}
	s.log = append(s.log, req)
}

// queryValues returns queries[] (or queries[0], queries[1], …) in order.
func queryValues(q map[string][]string) []string {
	out := append([]string(nil), q["queries[]"]...)
	type indexed struct {
		i int
		v []string
	}
	var idx []indexed
	for k, v := range q {
		if rest, ok := strings.CutPrefix(k, "queries["); ok && strings.HasSuffix(rest, "]") {
			if i, err := strconv.Atoi(strings.TrimSuffix(rest, "]")); err == nil {
				idx = append(idx, indexed{i, v})
			}
		}
	}
	sort.Slice(idx, func(a, b int) bool { return idx[a].i < idx[b].i })
	for _, x := range idx {
		out = append(out, x.v...)
	}
	return out
}

// Requests returns the requests received so far (the most recent 5,000 to 10,000).
func (s *Server) Requests() []Request {
	s.lmu.Lock()
	defer s.lmu.Unlock()
	return append([]Request(nil), s.log...)
}

// Stats counts requests.
type Stats struct {
	// Requests is every request received, hung ones included.
	Requests int64
	// Lists, Gets and Webhooks count requests routed to list rows, get row and get webhook.
	Lists, Gets, Webhooks int64
	// TablesDB and Legacy count list and get requests by API (TablesDB ones too when the
	// server is Legacy and answers them 404).
	TablesDB, Legacy int64
	// Errors counts answers with status >= 400.
	Errors int64
	// Hung counts requests that were held by Hang.
	Hung int64
}

// Stats returns the request counters.
func (s *Server) Stats() Stats {
	return Stats{
		Requests: s.stats.requests.Load(), Lists: s.stats.lists.Load(), Gets: s.stats.gets.Load(),
		Webhooks: s.stats.webhooks.Load(), TablesDB: s.stats.tablesDB.Load(), Legacy: s.stats.legacy.Load(),
		Errors: s.stats.errors.Load(), Hung: s.stats.hung.Load(),
	}
}

// ---- errors and auth ----

// fail writes Appwrite's error body.
func (s *Server) fail(w http.ResponseWriter, _ *http.Request, status int, typ, msg string) {
	s.writeJSON(w, status, map[string]any{"message": msg, "code": status, "type": typ, "version": s.opts.Version})
}

func (s *Server) writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"message":"encoding failed","code":500,"type":"general_server_error"}`)
	}
	s.writeBody(w, status, b)
}

func (s *Server) writeBody(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.Header().Set("X-Appwrite-Version", s.opts.Version)
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// authorize checks project, key and scopes like Appwrite's api init hook. It reports whether
// the request may go on, and whether it runs as a guest (no key at all).
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, routeScopes ...string) (ok, guest bool) {
	if r.Header.Get("X-Appwrite-Project") != s.opts.Project {
		s.fail(w, r, http.StatusNotFound, "project_not_found",
			"Project with the requested ID could not be found. Please check the value of the X-Appwrite-Project header to ensure the correct project ID is being used.")
		return false, false
	}
	key := r.Header.Get("X-Appwrite-Key")
	var have map[string]bool
	email, role := "User", "guests"
	switch {
	case key == "":
		guest = true
		have = map[string]bool{"rows.read": true, "documents.read": true}
	case key != s.opts.APIKey:
		s.fail(w, r, http.StatusUnauthorized, "user_unauthorized",
			"The current user is not authorized to perform the requested action.")
		return false, false
	default:
		have = s.scopes
		email, role = "app."+s.opts.Project+"@service."+hostname(r), "applications"
	}
	for _, sc := range routeScopes {
		if have[sc] {
			return true, guest
		}
	}
	want, _ := json.Marshal(routeScopes)
	s.fail(w, r, http.StatusUnauthorized, "general_unauthorized_scope",
		fmt.Sprintf("%s (role: %s) missing scopes (%s)", email, role, want))
	return false, false
}

func hostname(r *http.Request) string {
	h, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		return r.Host
	}
	return h
}

// ---- faults ----

// Fault is an error answer the double gives instead of serving a list or get-row request.
type Fault struct {
	// Status is the HTTP status, e.g. 500, 503, 429.
	Status int
	// Type is Appwrite's error type, e.g. "general_server_error". Empty with a Body.
	Type string
	// Message defaults to a generic one.
	Message string
	// Header is added to the answer (e.g. Retry-After).
	Header http.Header
	// Body, when set, replaces the Appwrite error JSON (e.g. a proxy's HTML page).
	Body string
	// Count is how many requests get this answer.
	Count int
}

// InjectError makes the next n list or get-row requests answer status with Appwrite error
// type typ. Faults queue up in order.
func (s *Server) InjectError(status int, typ string, n int) {
	s.Inject(Fault{Status: status, Type: typ, Count: n})
}

// Inject queues a fault for the next f.Count list or get-row requests.
func (s *Server) Inject(f Fault) {
	if f.Count <= 0 {
		return
	}
	s.fmu.Lock()
	defer s.fmu.Unlock()
	s.faults = append(s.faults, f)
}

func (s *Server) takeFault() (Fault, bool) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	if len(s.faults) == 0 {
		return Fault{}, false
	}
	f := s.faults[0]
	s.faults[0].Count--
	if s.faults[0].Count == 0 {
		s.faults = s.faults[1:]
	}
	return f, true
}

// serveFault answers with a queued fault, if any.
func (s *Server) serveFault(w http.ResponseWriter, r *http.Request) bool {
	f, ok := s.takeFault()
	if !ok {
		return false
	}
	for k, vs := range f.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	if f.Body != "" {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(f.Status)
		_, _ = w.Write([]byte(f.Body))
		return true
	}
	msg := f.Message
	if msg == "" {
		msg = http.StatusText(f.Status)
		switch f.Type {
		case "general_server_error":
			msg = "An internal server error occurred."
		case "general_rate_limit_exceeded":
			msg = "Rate limit for the current endpoint has been exceeded. Please try again after some time."
		}
	}
	s.fail(w, r, f.Status, f.Type, msg)
	return true
}

// Hang makes the next n requests (any route) never answer: they end when the client gives up
// or the server closes.
func (s *Server) Hang(n int) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	s.hangs += n
}

func (s *Server) takeHang() bool {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	if s.hangs > 0 {
		s.hangs--
		return true
	}
	return false
}

// SetLatency delays every answer by d (0 turns it off).
func (s *Server) SetLatency(d time.Duration) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	s.latency = d
}

func (s *Server) currentLatency() time.Duration {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	return s.latency
}

// ---- version ----

func parseVersion(v string) [3]int {
	var out [3]int
	for i, p := range strings.SplitN(strings.TrimPrefix(v, "v"), ".", 3) {
		p, _, _ = strings.Cut(p, "-")
		out[i], _ = strconv.Atoi(p)
	}
	return out
}

func (s *Server) atLeast(major, minor, patch int) bool {
	v := s.version
	if v[0] != major {
		return v[0] > major
	}
	if v[1] != minor {
		return v[1] > minor
	}
	return v[2] >= patch
}

// ---- clock ----

// Now is the double's clock: the $updatedAt (and $createdAt) Put and Seed give rows.
func (s *Server) Now() time.Time {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.now
}

// SetNow sets the clock (truncated to milliseconds, as Appwrite stores them).
func (s *Server) SetNow(t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = t.Truncate(time.Millisecond)
}

// Advance moves the clock forward by d.
func (s *Server) Advance(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = s.now.Add(d).Truncate(time.Millisecond)
}
