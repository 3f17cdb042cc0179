package meilitest

import (
	"bytes"
	"encoding/json"
	"maps"
	"mime"
	"net/url"
	"slices"
	"sort"
	"strings"
)

const contentTypeJSON = "application/json"

func mediaType(ct string) string {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return strings.ToLower(strings.TrimSpace(ct))
	}
	return mt
}

// checkParams rejects query parameters a route does not know, as Meilisearch does.
func checkParams(q url.Values, allowed ...string) *APIError {
	for _, k := range slices.Sorted(maps.Keys(q)) {
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

// postDocuments enqueues a documentAdditionOrUpdate that replaces whole documents (POST, the
// only write the sink makes). The payload is parsed now, so a malformed body is refused
// synchronously; everything that depends on the index (primary key, ids) is checked when the
// task runs and fails the task instead. Meilisearch also takes NDJSON and CSV bodies and
// merges on PUT; the sink sends neither, so the double answers them as it answers any
// other content type or route it does not know.
func (s *Server) postDocuments(rq *request) reply {
	uid, e := pathIndex(rq)
	if e != nil {
		return errorReply(e)
	}
	q := rq.URL.Query()
	if e := checkParams(q, "primaryKey", "customMetadata"); e != nil {
		return errorReply(e)
	}
	if e := checkContentType(rq, contentTypeJSON); e != nil {
		return errorReply(e)
	}
	if len(bytes.TrimSpace(rq.body)) == 0 {
		return errorReply(apiErrorf(CodeMissingPayload, "A json payload is missing."))
	}
	docs, err := splitJSONDocuments(rq.body)
	if err != nil {
		return errorReply(apiErrorf(CodeMalformedPayload, "The `json` payload provided is malformed. `Couldn't serialize document value: %v`.", err))
	}
	op := &addDocumentsOp{docs: docs}
	if pk, ok := q["primaryKey"]; ok {
		op.primaryKey, op.hasPrimaryKey = pk[0], true
	}
	t := s.enqueue(uid, TaskDocumentAdditionOrUpdate, details{{"receivedDocuments", int64(len(docs))}, {"indexedDocuments", nil}}, op, q.Get("customMetadata"))
	s.mu.Lock()
	s.counters.DocumentsReceived += int64(len(docs))
	s.mu.Unlock()
	return s.accepted(t)
}

type addDocumentsOp struct {
	docs          [][]byte
	primaryKey    string
	hasPrimaryKey bool
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
	for i, doc := range op.docs {
		ix.docs.put(ids[i], doc)
	}
	written := len(op.docs)
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
