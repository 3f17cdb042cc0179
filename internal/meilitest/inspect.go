package meilitest

import (
	"encoding/json"
	"maps"
	"time"
)

// Counters measures the traffic the server saw, e.g. to check that a sink collapses writes.
type Counters struct {
	// Requests counts every HTTP request received, including those answered by an injected
	// fault or refused by authentication.
	Requests int64
	// RequestsByRoute counts requests by route pattern ("POST /indexes/{uid}/documents");
	// requests matching no route are counted under "unmatched".
	RequestsByRoute map[string]int64
	// TasksByType counts enqueued tasks by type.
	TasksByType map[TaskType]int64
	// TasksByStatus counts finished tasks by final status.
	TasksByStatus map[TaskStatus]int64
	// DocumentsReceived counts documents in accepted addition/update payloads.
	DocumentsReceived int64
	// DocumentsWritten counts documents stored by succeeded addition/update tasks.
	DocumentsWritten int64
	// DocumentsDeleted counts documents removed (by id or index deletion).
	DocumentsDeleted int64
	// InjectedHTTPErrors and DroppedConnections count the faults that fired.
	InjectedHTTPErrors int64
	DroppedConnections int64
}

func newCounters() Counters {
	return Counters{
		RequestsByRoute: map[string]int64{},
		TasksByType:     map[TaskType]int64{},
		TasksByStatus:   map[TaskStatus]int64{},
	}
}

// Counters returns a snapshot of the counters.
func (s *Server) Counters() Counters {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c := s.counters
	c.RequestsByRoute = maps.Clone(c.RequestsByRoute)
	c.TasksByType = maps.Clone(c.TasksByType)
	c.TasksByStatus = maps.Clone(c.TasksByStatus)
	return c
}

// ResetCounters sets every counter back to zero.
func (s *Server) ResetCounters() {
	s.mu.Lock()
	s.counters = newCounters()
	s.mu.Unlock()
}

// Documents returns the stored documents of index by id, decoded as encoding/json decodes into
// any (numbers are float64). It returns nil when the index does not exist.
func (s *Server) Documents(index string) map[string]map[string]any {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ix := s.indexes[index]
	if ix == nil {
		return nil
	}
	out := make(map[string]map[string]any, ix.docs.len())
	ix.docs.each(func(id string, raw []byte) bool {
		out[id] = decodeDocument(raw)
		return true
	})
	return out
}

// Document returns one stored document.
func (s *Server) Document(index, id string) (map[string]any, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ix := s.indexes[index]
	if ix == nil {
		return nil, false
	}
	raw, ok := ix.docs.get(id)
	if !ok {
		return nil, false
	}
	return decodeDocument(raw), true
}

// DocumentCount returns the number of documents in index (0 when it does not exist).
func (s *Server) DocumentCount(index string) int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if ix := s.indexes[index]; ix != nil {
		return ix.docs.len()
	}
	return 0
}

func decodeDocument(raw []byte) map[string]any {
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return m
}

// IndexInfo describes an index and its settings.
type IndexInfo struct {
	UID               string
	PrimaryKey        string
	CreatedAt         time.Time
	UpdatedAt         time.Time
	NumberOfDocuments int
	// Settings is the settings object as GET /indexes/{uid}/settings returns it, decoded.
	Settings map[string]any
}

// Index returns the index uid, if it exists.
func (s *Server) Index(uid string) (IndexInfo, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ix := s.indexes[uid]
	if ix == nil {
		return IndexInfo{}, false
	}
	var settings map[string]any
	_ = json.Unmarshal(ix.settings.marshal(), &settings)
	return IndexInfo{
		UID:               ix.uid,
		PrimaryKey:        ix.primaryKey,
		CreatedAt:         ix.createdAt,
		UpdatedAt:         ix.updatedAt,
		NumberOfDocuments: ix.docs.len(),
		Settings:          settings,
	}, true
}

// Tasks returns every task (deleted ones excepted) in uid order.
func (s *Server) Tasks() []Task {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Task, 0, len(s.tasks))
	for _, t := range s.tasks {
		if t != nil {
			out = append(out, t.snapshot())
		}
	}
	return out
}

// Task returns the task uid.
func (s *Server) Task(uid int64) (Task, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if uid < 0 || uid >= int64(len(s.tasks)) || s.tasks[uid] == nil {
		return Task{}, false
	}
	return s.tasks[uid].snapshot(), true
}
