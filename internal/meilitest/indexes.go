package meilitest

import (
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// maxIndexUIDBytes is the longest index uid Meilisearch accepts.
const maxIndexUIDBytes = 512

type index struct {
	uid        string
	primaryKey string
	createdAt  time.Time
	updatedAt  time.Time
	docs       *docStore
	settings   *settings
}

// createIndex registers a new empty index. s.mu must be held for writing.
func (s *Server) createIndex(uid, primaryKey string) *index {
	now := s.now()
	ix := &index{uid: uid, primaryKey: primaryKey, createdAt: now, updatedAt: now, docs: newDocStore(), settings: newSettings()}
	s.indexes[uid] = ix
	return ix
}

// indexView is the JSON of GET /indexes/{uid}.
type indexView struct {
	UID        string    `json:"uid"`
	CreatedAt  time.Time `json:"createdAt"`
	UpdatedAt  time.Time `json:"updatedAt"`
	PrimaryKey *string   `json:"primaryKey"`
}

func (ix *index) view() indexView {
	v := indexView{UID: ix.uid, CreatedAt: ix.createdAt, UpdatedAt: ix.updatedAt}
	if ix.primaryKey != "" {
		pk := ix.primaryKey
		v.PrimaryKey = &pk
	}
	return v
}

func validIndexUID(uid string) bool {
	if len(uid) == 0 || len(uid) > maxIndexUIDBytes {
		return false
	}
	for i := 0; i < len(uid); i++ {
		c := uid[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func invalidIndexUID(uid, at string) *APIError {
	return apiErrorf(CodeInvalidIndexUID, "%s`%s` is not a valid index uid. Index uid can be an integer or a string containing only alphanumeric characters, hyphens (-) and underscores (_), and can not be more than 512 bytes.", at, uid)
}

func indexNotFound(uid string) *APIError {
	return apiErrorf(CodeIndexNotFound, "Index `%s` not found.", uid)
}

// pathIndex validates the {uid} path value, as Meilisearch does for every index route.
func pathIndex(rq *request) (string, *APIError) {
	uid := rq.PathValue("uid")
	if !validIndexUID(uid) {
		return "", invalidIndexUID(uid, "")
	}
	return uid, nil
}

// requireJSON checks a JSON body route's Content-Type and decodes the body into v.
func requireJSON(rq *request, v any) *APIError {
	if e := checkContentType(rq, "application/json"); e != nil {
		return e
	}
	if len(rq.body) == 0 {
		return newAPIError(CodeMissingPayload, "A json payload is missing.")
	}
	if err := json.Unmarshal(rq.body, v); err != nil {
		return apiErrorf(CodeBadRequest, "Json deserialize error: %v", err)
	}
	return nil
}

func checkContentType(rq *request, accepted ...string) *APIError {
	ct := rq.Header.Get("Content-Type")
	list := "`" + accepted[0] + "`"
	for _, a := range accepted[1:] {
		list += ", `" + a + "`"
	}
	if ct == "" {
		return apiErrorf(CodeMissingContentType, "A Content-Type header is missing. Accepted values for the Content-Type header are: %s", list)
	}
	mt := mediaType(ct)
	for _, a := range accepted {
		if mt == a {
			return nil
		}
	}
	return apiErrorf(CodeInvalidContentType, "The Content-Type `%s` is invalid. Accepted values for the Content-Type header are: %s", ct, list)
}

func (s *Server) accepted(summary summaryView) reply {
	return jsonReply(http.StatusAccepted, summary)
}

func (s *Server) listIndexes(rq *request) reply {
	q := rq.URL.Query()
	offset, e := queryInt(q, "offset", 0, CodeInvalidIndexOffset)
	if e != nil {
		return errorReply(e)
	}
	limit, e := queryInt(q, "limit", 20, CodeInvalidIndexLimit)
	if e != nil {
		return errorReply(e)
	}
	s.mu.RLock()
	uids := slices.Sorted(maps.Keys(s.indexes))
	results := []indexView{}
	for i := offset; i < len(uids) && i < offset+limit; i++ {
		results = append(results, s.indexes[uids[i]].view())
	}
	s.mu.RUnlock()
	return jsonReply(http.StatusOK, map[string]any{"results": results, "offset": offset, "limit": limit, "total": len(uids)})
}

// queryInt reads a non-negative integer query parameter.
func queryInt(q map[string][]string, name string, def int, code string) (int, *APIError) {
	vals, ok := q[name]
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(vals[0])
	if err != nil || n < 0 {
		return 0, apiErrorf(code, "Invalid value in parameter `%s`: could not parse `%s` as a positive integer", name, vals[0])
	}
	return n, nil
}

// withIndex answers a read of the index the request's path names: f runs under the read lock;
// an invalid uid or a missing index gets Meilisearch's error.
func (s *Server) withIndex(rq *request, f func(*index) reply) reply {
	uid, e := pathIndex(rq)
	if e != nil {
		return errorReply(e)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	ix := s.indexes[uid]
	if ix == nil {
		return errorReply(indexNotFound(uid))
	}
	return f(ix)
}

func (s *Server) getIndex(rq *request) reply {
	return s.withIndex(rq, func(ix *index) reply {
		return jsonReply(http.StatusOK, ix.view())
	})
}

func (s *Server) postIndex(rq *request) reply {
	var body map[string]json.RawMessage
	if e := requireJSON(rq, &body); e != nil {
		return errorReply(e)
	}
	for _, k := range slices.Sorted(maps.Keys(body)) {
		if k != "uid" && k != "primaryKey" {
			return errorReply(apiErrorf(CodeBadRequest, "Unknown field `%s`: expected one of `uid`, `primaryKey`", k))
		}
	}
	rawUID, ok := body["uid"]
	if !ok {
		return errorReply(newAPIError(CodeMissingIndexUID, "Missing field `uid`"))
	}
	var uid string
	if json.Unmarshal(rawUID, &uid) != nil {
		return errorReply(apiErrorf(CodeInvalidIndexUID, "Invalid value type at `.uid`: expected a string, but found %s", describeValue(decodeAny(rawUID))))
	}
	if !validIndexUID(uid) {
		return errorReply(invalidIndexUID(uid, "Invalid value at `.uid`: "))
	}
	pk, e := optionalPrimaryKey(body["primaryKey"])
	if e != nil {
		return errorReply(e)
	}
	var pkDetail any
	if pk != "" {
		pkDetail = pk
	}
	t := s.enqueue(uid, TaskIndexCreation, details{{"primaryKey", pkDetail}}, &createIndexOp{primaryKey: pk}, rq.URL.Query().Get("customMetadata"))
	return s.accepted(t)
}

func optionalPrimaryKey(raw json.RawMessage) (string, *APIError) {
	if raw == nil || string(raw) == "null" {
		return "", nil
	}
	var pk string
	if json.Unmarshal(raw, &pk) != nil {
		return "", apiErrorf(CodeInvalidIndexPrimaryKey, "Invalid value type at `.primaryKey`: expected a string, but found %s", describeValue(decodeAny(raw)))
	}
	return pk, nil
}

func (s *Server) patchIndex(rq *request) reply {
	uid, e := pathIndex(rq)
	if e != nil {
		return errorReply(e)
	}
	var body map[string]json.RawMessage
	if e := requireJSON(rq, &body); e != nil {
		return errorReply(e)
	}
	op := &updateIndexOp{}
	d := details{}
	for _, k := range slices.Sorted(maps.Keys(body)) {
		switch k {
		case "primaryKey":
			pk, e := optionalPrimaryKey(body[k])
			if e != nil {
				return errorReply(e)
			}
			op.primaryKey, op.hasPrimaryKey = pk, pk != ""
			d.set("primaryKey", pk)
		case "uid":
			var newUID string
			if json.Unmarshal(body[k], &newUID) != nil || !validIndexUID(newUID) {
				return errorReply(invalidIndexUID(string(body[k]), "Invalid value at `.uid`: "))
			}
			op.newUID = newUID
			d.set("oldIndexUid", uid)
			d.set("newIndexUid", newUID)
		default:
			return errorReply(apiErrorf(CodeBadRequest, "Unknown field `%s`: expected one of `primaryKey`, `uid`", k))
		}
	}
	t := s.enqueue(uid, TaskIndexUpdate, d, op, rq.URL.Query().Get("customMetadata"))
	return s.accepted(t)
}

func (s *Server) deleteIndex(rq *request) reply {
	uid, e := pathIndex(rq)
	if e != nil {
		return errorReply(e)
	}
	t := s.enqueue(uid, TaskIndexDeletion, details{{"deletedDocuments", nil}}, &deleteIndexOp{}, rq.URL.Query().Get("customMetadata"))
	return s.accepted(t)
}

// indexStats is the JSON of GET /indexes/{uid}/stats.
type indexStats struct {
	NumberOfDocuments         int              `json:"numberOfDocuments"`
	RawDocumentDbSize         int              `json:"rawDocumentDbSize"`
	AvgDocumentSize           int              `json:"avgDocumentSize"`
	IsIndexing                bool             `json:"isIndexing"`
	NumberOfEmbeddings        int              `json:"numberOfEmbeddings"`
	NumberOfEmbeddedDocuments int              `json:"numberOfEmbeddedDocuments"`
	FieldDistribution         map[string]int64 `json:"fieldDistribution"`
}

// stats computes an index's statistics. s.mu must be held.
func (s *Server) stats(ix *index) indexStats {
	st := indexStats{NumberOfDocuments: ix.docs.len(), FieldDistribution: map[string]int64{}}
	ix.docs.each(func(_ string, raw []byte) bool {
		st.RawDocumentDbSize += len(raw)
		forEachField(raw, func(k, _ []byte) bool {
			st.FieldDistribution[unquoteKey(k)]++
			return true
		})
		return true
	})
	if st.NumberOfDocuments > 0 {
		st.AvgDocumentSize = st.RawDocumentDbSize / st.NumberOfDocuments
	}
	if s.processing != nil && s.processing.indexUID == ix.uid {
		st.IsIndexing = true
	}
	for _, t := range s.queue {
		if t.indexUID == ix.uid {
			st.IsIndexing = true
		}
	}
	return st
}

func (s *Server) getIndexStats(rq *request) reply {
	return s.withIndex(rq, func(ix *index) reply {
		return jsonReply(http.StatusOK, s.stats(ix))
	})
}

func (s *Server) getStats(*request) reply {
	s.mu.RLock()
	defer s.mu.RUnlock()
	all := map[string]indexStats{}
	size := 0
	var last *time.Time
	for uid, ix := range s.indexes {
		st := s.stats(ix)
		all[uid] = st
		size += st.RawDocumentDbSize
		if last == nil || ix.updatedAt.After(*last) {
			u := ix.updatedAt
			last = &u
		}
	}
	return jsonReply(http.StatusOK, map[string]any{"databaseSize": size, "usedDatabaseSize": size, "lastUpdate": last, "indexes": all})
}

type createIndexOp struct{ primaryKey string }

func (op *createIndexOp) apply(s *Server, t *task) (details, *APIError) {
	if s.indexes[t.indexUID] != nil {
		return nil, apiErrorf(CodeIndexAlreadyExists, "Index `%s` already exists.", t.indexUID)
	}
	s.mu.Lock()
	s.createIndex(t.indexUID, op.primaryKey)
	s.mu.Unlock()
	return nil, nil
}

func (op *createIndexOp) failed() details { return nil }

type updateIndexOp struct {
	primaryKey    string
	hasPrimaryKey bool
	newUID        string
}

func (op *updateIndexOp) apply(s *Server, t *task) (details, *APIError) {
	ix := s.indexes[t.indexUID]
	if ix == nil {
		return nil, indexNotFound(t.indexUID)
	}
	if op.newUID != "" && op.newUID != t.indexUID && s.indexes[op.newUID] != nil {
		return nil, apiErrorf(CodeIndexAlreadyExists, "Index `%s` already exists.", op.newUID)
	}
	if op.hasPrimaryKey && op.primaryKey != ix.primaryKey && ix.docs.len() > 0 {
		return nil, apiErrorf(CodeIndexPrimaryKeyAlreadyExists, "Index `%s`: Index already has a primary key: `%s`.", t.indexUID, ix.primaryKey)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if op.hasPrimaryKey {
		ix.primaryKey = op.primaryKey
	}
	if op.newUID != "" && op.newUID != t.indexUID {
		delete(s.indexes, t.indexUID)
		ix.uid = op.newUID
		s.indexes[op.newUID] = ix
	}
	ix.updatedAt = s.now()
	return nil, nil
}

func (op *updateIndexOp) failed() details { return nil }

type deleteIndexOp struct{}

func (op *deleteIndexOp) apply(s *Server, t *task) (details, *APIError) {
	ix := s.indexes[t.indexUID]
	if ix == nil {
		return nil, indexNotFound(t.indexUID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.indexes, t.indexUID)
	n := ix.docs.len()
	s.counters.DocumentsDeleted += int64(n)
	return details{{"deletedDocuments", int64(n)}}, nil
}

func (op *deleteIndexOp) failed() details { return details{{"deletedDocuments", int64(0)}} }
