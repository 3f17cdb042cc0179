package appwritetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/appwrite-sync/appwrite-sync/connector"
)

// ---- test controls ----

// CreateDatabase makes an empty database exist.
func (s *Server) CreateDatabase(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dbs[id] = true
}

// CreateTable makes an empty table (and its database) exist. Put and Seed create tables too.
func (s *Server) CreateTable(key connector.TableKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.table(key)
}

// table returns the table, creating it. Callers hold s.mu for writing.
func (s *Server) table(key connector.TableKey) *table {
	t := s.tables[key]
	if t == nil {
		t = newTable(key)
		s.tables[key] = t
		s.dbs[key.Database] = true
	}
	return t
}

// Put creates or updates a row and returns it as the TablesDB API would. row must hold a
// string "$id"; "$updatedAt" and "$createdAt" (string or time.Time) default to the clock
// ($createdAt is kept on update unless given); "$permissions" ([]string) defaults to none
// (kept on update); other "$" keys are ignored ($sequence is assigned on create); every
// other key is a column (an update replaces all columns). Put panics on an invalid row: it is
// a test's mistake.
func (s *Server) Put(key connector.TableKey, row map[string]any) json.RawMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.table(key)
	i, err := t.put(row, s.now)
	if err != nil {
		panic(fmt.Sprintf("appwritetest: Put %s: %v", key, err))
	}
	return t.render(nil, &t.rows[i], s.renderOpts(false, nil))
}

// Delete removes a row; it reports whether the row existed.
func (s *Server) Delete(key connector.TableKey, id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tables[key]
	return t != nil && t.delete(id)
}

// Rows returns the table's rows in $sequence order, as the TablesDB API renders them.
func (s *Server) Rows(key connector.TableKey) []json.RawMessage {
	s.mu.RLock()
	defer s.mu.RUnlock()
	t := s.tables[key]
	if t == nil {
		return nil
	}
	out := make([]json.RawMessage, len(t.rows))
	o := s.renderOpts(false, nil)
	for i := range t.rows {
		out[i] = t.render(nil, &t.rows[i], o)
	}
	return out
}

// Len returns the number of rows in the table.
func (s *Server) Len(key connector.TableKey) int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if t := s.tables[key]; t != nil {
		return len(t.rows)
	}
	return 0
}

// Seed appends n generated rows of about rowBytes bytes each (as rendered), with ids
// "seed-<sequence>", columns "title" and "body", no permissions and the clock as $createdAt
// and $updatedAt. A seeded row costs about 40 bytes of memory whatever rowBytes is, so
// millions of rows are cheap. Put and Delete work on seeded rows like on any other.
func (s *Server) Seed(key connector.TableKey, n, rowBytes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.table(key).seed(n, rowBytes, s.now)
}

func (s *Server) renderOpts(legacy bool, selected map[string]bool) renderOpts {
	return renderOpts{legacy: legacy, seqAsString: s.opts.SequenceAsString, selected: selected}
}

// ---- handlers ----

// notFound answers 404 as Appwrite does for a missing resource of the kind named ("Table"):
// type table_not_found, "Table with the requested ID 'x' could not be found.".
func (s *Server) notFound(w http.ResponseWriter, r *http.Request, kind, id string) {
	s.fail(w, r, http.StatusNotFound, strings.ToLower(kind)+"_not_found",
		fmt.Sprintf("%s with the requested ID '%s' could not be found.", kind, id))
}

// noun names a resource in the legacy Databases API (collections, documents) or in TablesDB.
func noun(legacy bool, databases, tablesDB string) string {
	if legacy {
		return databases
	}
	return tablesDB
}

// dataRoute checks what every list and get-row request goes through: faults, auth, database
// and table. It returns the table, or nil after answering.
func (s *Server) dataRoute(w http.ResponseWriter, r *http.Request, legacy bool) (t *table, guest bool) {
	if legacy {
		s.stats.legacy.Add(1)
	} else {
		s.stats.tablesDB.Add(1)
	}
	if s.serveFault(w, r) {
		return nil, false
	}
	scopes := []string{"rows.read", "documents.read"}
	if legacy {
		scopes = []string{"documents.read"}
	}
	ok, guest := s.authorize(w, r, scopes...)
	if !ok {
		return nil, false
	}
	db, tbl := r.PathValue("db"), r.PathValue("table")
	if !s.dbs[db] {
		s.notFound(w, r, "Database", db)
		return nil, false
	}
	t = s.tables[connector.TableKey{Database: db, Table: tbl}]
	if t == nil {
		s.notFound(w, r, noun(legacy, "Collection", "Table"), tbl)
		return nil, false
	}
	return t, guest
}

// readRows serves a read of a table's rows: it counts the request in n, buffers the answer and
// holds the read lock while answer runs on the table dataRoute resolved (it answered when none).
func (s *Server) readRows(n *atomic.Int64, legacy bool, answer func(w http.ResponseWriter, r *http.Request, t *table, guest bool)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w, flush := buffer(w)
		defer flush()
		s.mu.RLock()
		defer s.mu.RUnlock()
		if t, guest := s.dataRoute(w, r, legacy); t != nil {
			answer(w, r, t, guest)
		}
	}
}

func (s *Server) handleList(legacy bool) http.HandlerFunc {
	return s.readRows(&s.stats.lists, legacy, func(w http.ResponseWriter, r *http.Request, t *table, guest bool) {
		params := r.URL.Query()
		q, err := parseQueries(queryValues(params))
		if err != nil {
			var qe *queryError
			errors.As(err, &qe)
			s.fail(w, r, http.StatusBadRequest, qe.typ, qe.msg)
			return
		}
		count := true
		if s.atLeast(1, 8, 1) {
			if v := params.Get("total"); v == "false" || v == "0" {
				count = false
			}
		}
		cursor := -1
		if q.cursor != "" {
			i, ok := t.lookup(q.cursor)
			if !ok {
				s.fail(w, r, http.StatusBadRequest, "general_cursor_not_found",
					fmt.Sprintf("%s '%s' for the 'cursor' value not found.", noun(legacy, "Document", "Row"), q.cursor))
				return
			}
			cursor = i
		}
		page, total := q.run(t, cursor, guest, count)

		envKey := `{"total":`
		b := make([]byte, 0, 64+len(page)*256)
		b = append(b, envKey...)
		b = strconv.AppendInt(b, total, 10)
		if legacy {
			b = append(b, `,"documents":[`...)
		} else {
			b = append(b, `,"rows":[`...)
		}
		o := s.renderOpts(legacy, q.selected)
		o.times = &timeCache{}
		for n, i := range page {
			if n > 0 {
				b = append(b, ',')
			}
			b = t.render(b, &t.rows[i], o)
		}
		b = append(b, "]}"...)
		s.writeBody(w, http.StatusOK, b)
	})
}

func (s *Server) handleGet(legacy bool) http.HandlerFunc {
	return s.readRows(&s.stats.gets, legacy, func(w http.ResponseWriter, r *http.Request, t *table, guest bool) {
		id := r.PathValue("row")
		i, ok := t.lookup(id)
		if !ok || (guest && !t.rows[i].public()) {
			s.notFound(w, r, noun(legacy, "Document", "Row"), id)
			return
		}
		s.writeBody(w, http.StatusOK, t.render(nil, &t.rows[i], s.renderOpts(legacy, nil)))
	})
}

// ---- webhooks ----

// Webhook is what GET /v1/webhooks/{id} returns (1.9+). Secret and AuthPassword are sent too,
// as Appwrite does, so tests can check that clients do not keep or log them.
type Webhook struct {
	ID           string   `json:"$id"`
	CreatedAt    string   `json:"$createdAt"`
	UpdatedAt    string   `json:"$updatedAt"`
	Name         string   `json:"name"`
	URL          string   `json:"url"`
	Events       []string `json:"events"`
	TLS          bool     `json:"tls"`
	AuthUsername string   `json:"authUsername"`
	AuthPassword string   `json:"authPassword"`
	Secret       string   `json:"secret"`
	Enabled      bool     `json:"enabled"`
	Logs         string   `json:"logs"`
	Attempts     int      `json:"attempts"`
}

// SetWebhook creates or updates a webhook's health as GET /v1/webhooks/{id} reports it.
func (s *Server) SetWebhook(id string, enabled bool, attempts int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ts := s.now.UTC().Format(timeLayout)
	w, ok := s.webhooks[id]
	if !ok {
		w = Webhook{ID: id, CreatedAt: ts, Name: "appwrite-sync", URL: "https://sync.example.com/webhooks/appwrite",
			Events: []string{"databases.*.tables.*.rows.*"}, TLS: true, AuthUsername: "sync", AuthPassword: "webhook-basic-auth-password"}
	}
	w.UpdatedAt, w.Enabled, w.Attempts = ts, enabled, attempts
	w.Logs = ""
	if attempts > 0 {
		w.Logs = "Failed to connect to remote server."
	}
	s.webhooks[id] = w
}

func (s *Server) handleWebhook(w http.ResponseWriter, r *http.Request) {
	s.stats.webhooks.Add(1)
	if ok, _ := s.authorize(w, r, "webhooks.read"); !ok {
		return
	}
	s.mu.RLock()
	wh, ok := s.webhooks[r.PathValue("id")]
	s.mu.RUnlock()
	if !ok {
		s.fail(w, r, http.StatusNotFound, "webhook_not_found", "Webhook with the requested ID could not be found.")
		return
	}
	wh.Secret = "" // Appwrite removes the signature key from this answer
	s.writeJSON(w, http.StatusOK, wh)
}

// Webhook returns the webhook as the double holds it (secrets included).
func (s *Server) Webhook(id string) (Webhook, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	w, ok := s.webhooks[id]
	return w, ok
}

// handleUpdateWebhook is PUT /v1/webhooks/{id} as Appwrite 1.9 defines it (Webhooks module,
// Http/Webhooks/Update.php): scope webhooks.write; name, url and events are required, enabled
// (default true), tls (default false), authUsername and authPassword (default "") optional;
// every one of them replaces the stored value; enabling resets attempts to 0; the answer is
// the updated webhook (with its secret: only GET removes it).
func (s *Server) handleUpdateWebhook(w http.ResponseWriter, r *http.Request) {
	s.stats.webhooks.Add(1)
	if ok, _ := s.authorize(w, r, "webhooks.write"); !ok {
		return
	}
	var p map[string]json.RawMessage
	if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
		s.fail(w, r, http.StatusBadRequest, "general_argument_invalid", "Invalid JSON body.")
		return
	}
	for _, name := range []string{"name", "url", "events"} {
		if v, ok := p[name]; !ok || string(v) == "null" {
			s.fail(w, r, http.StatusBadRequest, "general_argument_invalid", fmt.Sprintf(`Param "%s" is not optional.`, name))
			return
		}
	}
	upd := struct {
		Name         string   `json:"name"`
		URL          string   `json:"url"`
		Events       []string `json:"events"`
		Enabled      *bool    `json:"enabled"`
		TLS          bool     `json:"tls"`
		AuthUsername string   `json:"authUsername"`
		AuthPassword string   `json:"authPassword"`
	}{}
	b, _ := json.Marshal(p)
	if err := json.Unmarshal(b, &upd); err != nil {
		s.fail(w, r, http.StatusBadRequest, "general_argument_invalid", "Invalid param: "+err.Error())
		return
	}
	s.mu.Lock()
	wh, ok := s.webhooks[r.PathValue("id")]
	if !ok {
		s.mu.Unlock()
		s.fail(w, r, http.StatusNotFound, "webhook_not_found", "Webhook with the requested ID could not be found.")
		return
	}
	enabled := upd.Enabled == nil || *upd.Enabled
	wh.Name, wh.URL, wh.Events, wh.TLS, wh.AuthUsername, wh.AuthPassword, wh.Enabled =
		upd.Name, upd.URL, upd.Events, upd.TLS, upd.AuthUsername, upd.AuthPassword, enabled
	if enabled {
		wh.Attempts = 0
	}
	wh.UpdatedAt = s.now.UTC().Format(timeLayout)
	s.webhooks[wh.ID] = wh
	s.mu.Unlock()
	s.writeJSON(w, http.StatusOK, wh)
}

// buffer collects an answer in memory so it is sent after the handler let go of the lock (a
// slow reader must not block Put and Delete). flush sends it; defer it before locking.
func buffer(w http.ResponseWriter) (http.ResponseWriter, func()) {
	b := &bufferedResponse{header: http.Header{}, status: http.StatusOK}
	return b, func() {
		for k, v := range b.header {
			w.Header()[k] = v
		}
		w.WriteHeader(b.status)
		_, _ = w.Write(b.body)
	}
}

type bufferedResponse struct {
	header http.Header
	status int
	body   []byte
}

func (b *bufferedResponse) Header() http.Header  { return b.header }
func (b *bufferedResponse) WriteHeader(code int) { b.status = code }
func (b *bufferedResponse) Write(p []byte) (int, error) {
	if b.body == nil {
		b.body = p // the handlers here never reuse a buffer they wrote
		return len(p), nil
	}
	b.body = append(b.body, p...)
	return len(p), nil
}
