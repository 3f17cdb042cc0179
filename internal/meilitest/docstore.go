package meilitest

import (
	"bytes"
	"strconv"
)

// maxDocumentIDBytes is the longest string id Meilisearch accepts.
const maxDocumentIDBytes = 511

// docStore holds an index's documents as compact JSON, keyed by external id, in insertion
// order (replacing a document keeps its place, as Meilisearch keeps its internal id).
type docStore struct {
	pos   map[string]int
	slots []docSlot
	dead  int
}

type docSlot struct {
	id  string
	raw []byte // nil once deleted
}

func newDocStore() *docStore { return &docStore{pos: make(map[string]int)} }

func (d *docStore) len() int { return len(d.pos) }

func (d *docStore) get(id string) ([]byte, bool) {
	i, ok := d.pos[id]
	if !ok {
		return nil, false
	}
	return d.slots[i].raw, true
}

func (d *docStore) put(id string, raw []byte) {
	if i, ok := d.pos[id]; ok {
		d.slots[i].raw = raw
		return
	}
	d.pos[id] = len(d.slots)
	d.slots = append(d.slots, docSlot{id: id, raw: raw})
}

func (d *docStore) delete(id string) bool {
	i, ok := d.pos[id]
	if !ok {
		return false
	}
	delete(d.pos, id)
	d.slots[i] = docSlot{}
	d.dead++
	if d.dead > 1024 && d.dead > len(d.pos) {
		d.compact()
	}
	return true
}

func (d *docStore) compact() {
	if d.dead == 0 {
		return
	}
	live := make([]docSlot, 0, len(d.pos))
	for _, s := range d.slots {
		if s.raw != nil {
			d.pos[s.id] = len(live)
			live = append(live, s)
		}
	}
	d.slots = live
	d.dead = 0
}

// each visits live documents in order until fn returns false.
func (d *docStore) each(fn func(id string, raw []byte) bool) {
	for _, s := range d.slots {
		if s.raw != nil && !fn(s.id, s.raw) {
			return
		}
	}
}

// documentID validates a raw primary-key value the way Meilisearch does and returns the
// external id: an integer (in i64 or u64 range) or a string of 1 to 511 bytes of
// [A-Za-z0-9_-]. Anything else, floats included, is invalid.
func documentID(raw []byte) (string, bool) {
	switch {
	case len(raw) == 0:
		return "", false
	case raw[0] == '"':
		s := unquoteKey(raw)
		return s, validStringID(s)
	case raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9'):
		if bytes.ContainsAny(raw, ".eE") {
			return "", false
		}
		if raw[0] == '-' {
			n, err := strconv.ParseInt(string(raw), 10, 64)
			return strconv.FormatInt(n, 10), err == nil
		}
		n, err := strconv.ParseUint(string(raw), 10, 64)
		return strconv.FormatUint(n, 10), err == nil
	default:
		return "", false
	}
}

func validStringID(s string) bool {
	if len(s) == 0 || len(s) > maxDocumentIDBytes {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// externalID normalises an id given to a delete or get route (string or number) to the
// external id documents are stored under. Invalid ids are returned as is: they simply match
// nothing, as in Meilisearch.
func externalID(raw []byte) string {
	if len(raw) > 0 && raw[0] == '"' {
		return unquoteKey(raw)
	}
	if id, ok := documentID(raw); ok {
		return id
	}
	return string(raw)
}
