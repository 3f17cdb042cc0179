package meilitest

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

const (
	contentTypeJSON   = "application/json"
	contentTypeNDJSON = "application/x-ndjson"
	contentTypeCSV    = "text/csv"
)

func mediaType(ct string) string {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return strings.ToLower(strings.TrimSpace(ct))
	}
	return mt
}

// checkParams rejects query parameters a route does not know, as Meilisearch does.
func checkParams(q url.Values, allowed ...string) *APIError {
	for _, k := range sortedKeys(q) {
		known := false
		for _, a := range allowed {
			if k == a {
				known = true
				break
			}
		}
		if !known {
			return apiErrorf(CodeBadRequest, "Unknown parameter `%s`: expected one of `%s`", k, strings.Join(allowed, "`, `"))
		}
	}
	return nil
}

// postDocuments enqueues a documentAdditionOrUpdate: POST replaces documents, PUT (merge)
// updates them field by field. The payload is parsed now, so a malformed body is refused
// synchronously; everything that depends on the index (primary key, ids) is checked when the
// task runs and fails the task instead.
func (s *Server) postDocuments(rq *request, merge bool) reply {
	uid, e := pathIndex(rq)
	if e != nil {
		return errorReply(e)
	}
	q := rq.URL.Query()
	if e := checkParams(q, "primaryKey", "csvDelimiter", "customMetadata", "skipCreation"); e != nil {
		return errorReply(e)
	}
	if e := checkContentType(rq, contentTypeJSON, contentTypeNDJSON, contentTypeCSV); e != nil {
		return errorReply(e)
	}
	mt := mediaType(rq.Header.Get("Content-Type"))
	delimiter := ','
	if d, ok := q["csvDelimiter"]; ok {
		if mt != contentTypeCSV {
			return errorReply(apiErrorf(CodeInvalidContentType, "The Content-Type `%s` does not support the use of a csv delimiter. The csv delimiter can only be used with the Content-Type `text/csv`.", mt))
		}
		r := []rune(d[0])
		if len(r) != 1 || r[0] > 127 {
			return errorReply(apiErrorf(CodeInvalidDocumentCSVDelimiter, "Invalid value in parameter `csvDelimiter`: expected a string of one character, but found `%s`", d[0]))
		}
		delimiter = r[0]
	}
	format := map[string]string{contentTypeJSON: "json", contentTypeNDJSON: "ndjson", contentTypeCSV: "csv"}[mt]
	if len(bytes.TrimSpace(rq.body)) == 0 {
		return errorReply(apiErrorf(CodeMissingPayload, "A %s payload is missing.", format))
	}
	var (
		docs [][]byte
		err  error
	)
	switch mt {
	case contentTypeJSON:
		docs, err = splitJSONDocuments(rq.body)
	case contentTypeNDJSON:
		docs, err = splitNDJSONDocuments(rq.body)
	default:
		docs, err = csvDocuments(rq.body, delimiter)
	}
	if err != nil {
		if mt == contentTypeCSV {
			return errorReply(apiErrorf(CodeMalformedPayload, "The `csv` payload provided is malformed: `%v`.", err))
		}
		return errorReply(apiErrorf(CodeMalformedPayload, "The `%s` payload provided is malformed. `Couldn't serialize document value: %v`.", format, err))
	}
	op := &addDocumentsOp{docs: docs, merge: merge, skipCreation: q.Get("skipCreation") == "true"}
	if pk, ok := q["primaryKey"]; ok {
		op.primaryKey, op.hasPrimaryKey = pk[0], true
	}
	t := s.enqueue(uid, TaskDocumentAdditionOrUpdate, details{{"receivedDocuments", int64(len(docs))}, {"indexedDocuments", nil}}, op, q.Get("customMetadata"))
	s.mu.Lock()
	s.counters.DocumentsReceived += int64(len(docs))
	s.mu.Unlock()
	return s.accepted(t)
}

// csvDocuments converts a CSV payload: the header names the fields, optionally typed
// ("age:number", "cute:boolean"); empty cells become null.
func csvDocuments(body []byte, delimiter rune) ([][]byte, error) {
	r := csv.NewReader(bytes.NewReader(body))
	r.Comma = delimiter
	records, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("CSV error: %w", err)
	}
	if len(records) == 0 {
		return nil, nil
	}
	type column struct {
		name, typ string
	}
	cols := make([]column, len(records[0]))
	for i, h := range records[0] {
		name, typ, _ := strings.Cut(h, ":")
		cols[i] = column{name, typ}
	}
	docs := make([][]byte, 0, len(records)-1)
	for line, rec := range records[1:] {
		doc := make([]byte, 0, 64)
		doc = append(doc, '{')
		for i, cell := range rec {
			if i > 0 {
				doc = append(doc, ',')
			}
			k, _ := json.Marshal(cols[i].name)
			doc = append(doc, k...)
			doc = append(doc, ':')
			switch {
			case cell == "":
				doc = append(doc, "null"...)
			case cols[i].typ == "number":
				f, err := strconv.ParseFloat(cell, 64)
				if err != nil {
					return nil, fmt.Errorf("Error parsing number %q at line %d: invalid float literal", cell, line+1)
				}
				doc = strconv.AppendFloat(doc, f, 'f', -1, 64)
			case cols[i].typ == "boolean":
				b, err := strconv.ParseBool(cell)
				if err != nil || (cell != "true" && cell != "false") {
					return nil, fmt.Errorf("Error parsing boolean %q at line %d: provided string was not `true` or `false`", cell, line+1)
				}
				doc = strconv.AppendBool(doc, b)
			default:
				v, _ := json.Marshal(cell)
				doc = append(doc, v...)
			}
		}
		docs = append(docs, append(doc, '}'))
	}
	return docs, nil
}

type addDocumentsOp struct {
	docs          [][]byte
	primaryKey    string
	hasPrimaryKey bool
	merge         bool
	skipCreation  bool
}

func (op *addDocumentsOp) failed() details { return details{{"indexedDocuments", int64(0)}} }

// apply resolves the primary key, validates every document id, then writes all documents or
// none: a single bad document fails the whole task.
func (op *addDocumentsOp) apply(s *Server, t *task) (details, *APIError) {
	ix := s.indexes[t.indexUID]
	if ix == nil {
		// Meilisearch creates the index when the batch starts, so it exists even when the
		// addition then fails.
		s.mu.Lock()
		ix = s.createIndex(t.indexUID, "")
		s.mu.Unlock()
	}
	pk, setPK := ix.primaryKey, false
	switch {
	case pk != "":
		if op.hasPrimaryKey && op.primaryKey != pk {
			return nil, apiErrorf(CodeIndexPrimaryKeyAlreadyExists, "Index already has a primary key: `%s`.", pk)
		}
	case op.hasPrimaryKey:
		pk, setPK = op.primaryKey, true
	case len(op.docs) > 0:
		inferred, e := inferPrimaryKey(op.docs[0])
		if e != nil {
			return nil, e
		}
		pk, setPK = inferred, true
	}
	ids := make([]string, len(op.docs))
	for i, doc := range op.docs {
		v, ok := lookupField(doc, pk)
		if !ok || string(v) == "null" {
			return nil, apiErrorf(CodeMissingDocumentID, "Document doesn't have a `%s` attribute: `%s`.", pk, doc)
		}
		id, ok := documentID(v)
		if !ok {
			return nil, apiErrorf(CodeInvalidDocumentID, "Document identifier `%s` is invalid. A document identifier can be of type integer or string, only composed of alphanumeric characters (a-z A-Z 0-9), hyphens (-) and underscores (_), and can not be more than 511 bytes.", v)
		}
		ids[i] = id
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if setPK {
		ix.primaryKey = pk
	}
	written := 0
	for i, doc := range op.docs {
		old, exists := ix.docs.get(ids[i])
		if !exists && op.skipCreation {
			continue
		}
		if exists && op.merge {
			doc = mergeDocument(old, doc)
		}
		ix.docs.put(ids[i], doc)
		written++
	}
	ix.updatedAt = s.now()
	s.counters.DocumentsWritten += int64(written)
	return details{{"indexedDocuments", int64(written)}}, nil
}

// inferPrimaryKey applies Meilisearch's inference: the single top-level field of the first
// document whose name ends with "id", case-insensitively.
func inferPrimaryKey(doc []byte) (string, *APIError) {
	var candidates []string
	forEachField(doc, func(k, _ []byte) bool {
		name := unquoteKey(k)
		if strings.HasSuffix(strings.ToLower(name), "id") {
			candidates = append(candidates, name)
		}
		return true
	})
	sort.Strings(candidates)
	switch len(candidates) {
	case 0:
		return "", newAPIError(CodeIndexPrimaryKeyNoCandidateFound, "The primary key inference failed as the engine did not find any field ending with `id` in its name. Please specify the primary key manually using the `primaryKey` query parameter.")
	case 1:
		return candidates[0], nil
	default:
		return "", apiErrorf(CodeIndexPrimaryKeyMultipleFound, "The primary key inference failed as the engine found %d fields ending with `id` in their names: '%s' and '%s'. Please specify the primary key manually using the `primaryKey` query parameter.", len(candidates), candidates[0], candidates[1])
	}
}

func (s *Server) deleteDocument(rq *request) reply {
	uid, e := pathIndex(rq)
	if e != nil {
		return errorReply(e)
	}
	t := s.enqueue(uid, TaskDocumentDeletion, details{{"providedIds", int64(1)}, {"deletedDocuments", nil}}, &deleteIDsOp{ids: []string{rq.PathValue("id")}}, rq.URL.Query().Get("customMetadata"))
	return s.accepted(t)
}

func (s *Server) deleteDocumentsBatch(rq *request) reply {
	uid, e := pathIndex(rq)
	if e != nil {
		return errorReply(e)
	}
	var raw []json.RawMessage
	if e := requireJSON(rq, &raw); e != nil {
		return errorReply(e)
	}
	ids := make([]string, 0, len(raw))
	for _, r := range raw {
		if len(r) == 0 || (r[0] != '"' && r[0] != '-' && (r[0] < '0' || r[0] > '9')) {
			return errorReply(apiErrorf(CodeBadRequest, "Json deserialize error: invalid type: %s, expected a document id (a string or an integer)", describeJSON(r)))
		}
		ids = append(ids, externalID(r))
	}
	t := s.enqueue(uid, TaskDocumentDeletion, details{{"providedIds", int64(len(ids))}, {"deletedDocuments", nil}}, &deleteIDsOp{ids: ids}, rq.URL.Query().Get("customMetadata"))
	return s.accepted(t)
}

// deleteIDsOp deletes documents by id. Unknown and invalid ids are not an error: they are just
// not counted in deletedDocuments.
type deleteIDsOp struct{ ids []string }

func (op *deleteIDsOp) failed() details { return details{{"deletedDocuments", int64(0)}} }

func (op *deleteIDsOp) apply(s *Server, t *task) (details, *APIError) {
	ix := s.indexes[t.indexUID]
	if ix == nil {
		return nil, indexNotFound(t.indexUID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, id := range op.ids {
		if ix.docs.delete(id) {
			n++
		}
	}
	ix.updatedAt = s.now()
	s.counters.DocumentsDeleted += int64(n)
	return details{{"deletedDocuments", int64(n)}}, nil
}

func (s *Server) deleteDocumentsByFilter(rq *request) reply {
	uid, e := pathIndex(rq)
	if e != nil {
		return errorReply(e)
	}
	var body any
	if e := requireJSON(rq, &body); e != nil {
		return errorReply(e)
	}
	obj, ok := body.(map[string]any)
	if !ok {
		return errorReply(apiErrorf(CodeBadRequest, "Invalid value type: expected an object, but found %s: `%s`", describeValue(body), compactJSON(body)))
	}
	for _, k := range sortedKeys(obj) {
		if k != "filter" {
			return errorReply(apiErrorf(CodeBadRequest, "Unknown field `%s`: expected one of `filter`", k))
		}
	}
	f, ok := obj["filter"]
	if !ok {
		return errorReply(newAPIError(CodeMissingDocumentFilter, "Missing field `filter`"))
	}
	rawFilter, _ := json.Marshal(f)
	expr, fe := parseFilter(rawFilter)
	if fe != nil {
		return errorReply(fe)
	}
	if expr == nil {
		return errorReply(newAPIError(CodeInvalidDocumentFilter, "Sending an empty filter is forbidden."))
	}
	d := details{{"providedIds", int64(0)}, {"deletedDocuments", nil}, {"originalFilter", string(rawFilter)}}
	t := s.enqueue(uid, TaskDocumentDeletion, d, &deleteByFilterOp{expr: expr}, rq.URL.Query().Get("customMetadata"))
	return s.accepted(t)
}

// deleteByFilterOp checks filterability when it runs (settings may change meanwhile), like
// Meilisearch, so a non-filterable attribute fails the task rather than the request.
type deleteByFilterOp struct{ expr filterExpr }

func (op *deleteByFilterOp) failed() details { return details{{"deletedDocuments", int64(0)}} }

func (op *deleteByFilterOp) apply(s *Server, t *task) (details, *APIError) {
	ix := s.indexes[t.indexUID]
	if ix == nil {
		return nil, indexNotFound(t.indexUID)
	}
	if e := checkFilter(op.expr, ix.settings.filterable, t.indexUID); e != nil {
		return nil, e
	}
	var doomed []string
	ix.docs.each(func(id string, raw []byte) bool {
		if op.expr.match(raw) {
			doomed = append(doomed, id)
		}
		return true
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range doomed {
		ix.docs.delete(id)
	}
	ix.updatedAt = s.now()
	s.counters.DocumentsDeleted += int64(len(doomed))
	return details{{"deletedDocuments", int64(len(doomed))}}, nil
}

func (s *Server) clearDocuments(rq *request) reply {
	uid, e := pathIndex(rq)
	if e != nil {
		return errorReply(e)
	}
	t := s.enqueue(uid, TaskDocumentDeletion, details{{"deletedDocuments", nil}}, &clearDocumentsOp{}, rq.URL.Query().Get("customMetadata"))
	return s.accepted(t)
}

type clearDocumentsOp struct{}

func (op *clearDocumentsOp) failed() details { return details{{"deletedDocuments", int64(0)}} }

func (op *clearDocumentsOp) apply(s *Server, t *task) (details, *APIError) {
	ix := s.indexes[t.indexUID]
	if ix == nil {
		return nil, indexNotFound(t.indexUID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := ix.docs.clear()
	ix.updatedAt = s.now()
	s.counters.DocumentsDeleted += int64(n)
	return details{{"deletedDocuments", int64(n)}}, nil
}

func (s *Server) getDocument(rq *request) reply {
	uid, e := pathIndex(rq)
	if e != nil {
		return errorReply(e)
	}
	q := rq.URL.Query()
	if e := checkParams(q, "fields", "retrieveVectors"); e != nil {
		return errorReply(e)
	}
	id := rq.PathValue("id")
	s.mu.RLock()
	defer s.mu.RUnlock()
	ix := s.indexes[uid]
	if ix == nil {
		return errorReply(indexNotFound(uid))
	}
	raw, ok := ix.docs.get(id)
	if !ok {
		return errorReply(apiErrorf(CodeDocumentNotFound, "Document `%s` not found.", id))
	}
	return reply{status: http.StatusOK, body: project(raw, splitList(q["fields"]), displayed(ix))}
}

func splitList(vals []string) []string {
	if len(vals) == 0 {
		return nil
	}
	var out []string
	for _, v := range strings.Split(vals[0], ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// displayed returns the index's displayedAttributes, nil when all are displayed.
func displayed(ix *index) []string {
	var attrs []string
	_ = json.Unmarshal(ix.settings.values["displayedAttributes"], &attrs)
	for _, a := range attrs {
		if a == "*" {
			return nil
		}
	}
	return attrs
}

// project keeps the top-level fields selected by both fields and shown (nil selects all).
func project(raw []byte, fields, shown []string) []byte {
	if fields == nil && shown == nil {
		return raw
	}
	out := []byte{'{'}
	forEachField(raw, func(k, v []byte) bool {
		name := unquoteKey(k)
		if selects(fields, name) && selects(shown, name) {
			if len(out) > 1 {
				out = append(out, ',')
			}
			out = append(out, k...)
			out = append(out, ':')
			out = append(out, v...)
		}
		return true
	})
	return append(out, '}')
}

func selects(patterns []string, name string) bool {
	if patterns == nil {
		return true
	}
	for _, p := range patterns {
		if p == "*" || p == name || wildcardMatch(p, name) || strings.HasPrefix(p, name+".") {
			return true
		}
	}
	return false
}

func (s *Server) listDocuments(rq *request) reply {
	uid, e := pathIndex(rq)
	if e != nil {
		return errorReply(e)
	}
	q := rq.URL.Query()
	if e := checkParams(q, "offset", "limit", "fields", "filter", "retrieveVectors", "ids", "sort"); e != nil {
		return errorReply(e)
	}
	offset, e := queryInt(q, "offset", 0, CodeInvalidDocumentOffset)
	if e != nil {
		return errorReply(e)
	}
	limit, e := queryInt(q, "limit", 20, CodeInvalidDocumentLimit)
	if e != nil {
		return errorReply(e)
	}
	var expr filterExpr
	if f, ok := q["filter"]; ok {
		raw, _ := json.Marshal(f[0])
		var fe *APIError
		if expr, fe = parseFilter(raw); fe != nil {
			return errorReply(fe)
		}
	}
	var ids []string
	if _, ok := q["ids"]; ok {
		ids = splitList(q["ids"])
		if ids == nil {
			ids = []string{}
		}
	}
	return s.queryDocuments(uid, offset, limit, splitList(q["fields"]), expr, ids)
}

func (s *Server) fetchDocuments(rq *request) reply {
	uid, e := pathIndex(rq)
	if e != nil {
		return errorReply(e)
	}
	var body any
	if e := requireJSON(rq, &body); e != nil {
		return errorReply(e)
	}
	obj, ok := body.(map[string]any)
	if !ok {
		return errorReply(apiErrorf(CodeBadRequest, "Invalid value type: expected an object, but found %s", describeValue(body)))
	}
	offset, limit := 0, 20
	var (
		fields []string
		ids    []string
		expr   filterExpr
	)
	for _, k := range sortedKeys(obj) {
		v := obj[k]
		switch k {
		case "offset", "limit":
			n, ok := v.(float64)
			if !ok || n < 0 || n != float64(int64(n)) {
				code := CodeInvalidDocumentOffset
				if k == "limit" {
					code = CodeInvalidDocumentLimit
				}
				return errorReply(apiErrorf(code, "Invalid value type at `.%s`: expected a positive integer, but found %s: `%s`", k, describeValue(v), compactJSON(v)))
			}
			if k == "offset" {
				offset = int(n)
			} else {
				limit = int(n)
			}
		case "fields":
			if v == nil {
				continue
			}
			arr, ok := v.([]any)
			if !ok {
				return errorReply(apiErrorf(CodeInvalidDocumentFields, "Invalid value type at `.fields`: expected an array, but found %s: `%s`", describeValue(v), compactJSON(v)))
			}
			fields = []string{}
			for _, f := range arr {
				fs, ok := f.(string)
				if !ok {
					return errorReply(apiErrorf(CodeInvalidDocumentFields, "Invalid value type at `.fields`: expected a string, but found %s", describeValue(f)))
				}
				fields = append(fields, fs)
			}
		case "ids":
			if v == nil {
				continue
			}
			arr, ok := v.([]any)
			if !ok {
				return errorReply(apiErrorf(CodeInvalidDocumentIDs, "Invalid value type at `.ids`: expected an array, but found %s", describeValue(v)))
			}
			ids = []string{}
			for i, el := range arr {
				raw, _ := json.Marshal(el)
				id, ok := documentID(raw)
				if !ok {
					return errorReply(apiErrorf(CodeInvalidDocumentIDs, "In `.ids[%d]`: Document identifier `%s` is invalid. A document identifier can be of type integer or string, only composed of alphanumeric characters (a-z A-Z 0-9), hyphens (-) and underscores (_), and can not be more than 511 bytes.", i, raw))
				}
				ids = append(ids, id)
			}
		case "filter":
			raw, _ := json.Marshal(v)
			var fe *APIError
			if expr, fe = parseFilter(raw); fe != nil {
				return errorReply(fe)
			}
		case "retrieveVectors", "sort":
		default:
			return errorReply(apiErrorf(CodeBadRequest, "Unknown field `%s`: expected one of `offset`, `limit`, `fields`, `retrieveVectors`, `ids`, `filter`, `sort`", k))
		}
	}
	return s.queryDocuments(uid, offset, limit, fields, expr, ids)
}

// queryDocuments answers the document listing routes. ids nil means no id restriction.
func (s *Server) queryDocuments(uid string, offset, limit int, fields []string, expr filterExpr, ids []string) reply {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ix := s.indexes[uid]
	if ix == nil {
		return errorReply(indexNotFound(uid))
	}
	if expr != nil {
		if e := checkFilter(expr, ix.settings.filterable, ""); e != nil {
			return errorReply(e)
		}
	}
	var idSet map[string]bool
	if ids != nil {
		idSet = make(map[string]bool, len(ids))
		for _, id := range ids {
			idSet[id] = true
		}
	}
	shown := displayed(ix)
	var b bytes.Buffer
	b.WriteString(`{"results":[`)
	total, written := 0, 0
	ix.docs.each(func(id string, raw []byte) bool {
		if idSet != nil && !idSet[id] {
			return true
		}
		if expr != nil && !expr.match(raw) {
			return true
		}
		if total >= offset && written < limit {
			if written > 0 {
				b.WriteByte(',')
			}
			b.Write(project(raw, fields, shown))
			written++
		}
		total++
		return true
	})
	fmt.Fprintf(&b, `],"offset":%d,"limit":%d,"total":%d}`, offset, limit, total)
	return reply{status: http.StatusOK, body: b.Bytes()}
}
