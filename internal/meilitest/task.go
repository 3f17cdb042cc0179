package meilitest

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"
)

// TaskStatus is a Meilisearch task status.
type TaskStatus string

// Task statuses.
const (
	TaskEnqueued   TaskStatus = "enqueued"
	TaskProcessing TaskStatus = "processing"
	TaskSucceeded  TaskStatus = "succeeded"
	TaskFailed     TaskStatus = "failed"
	TaskCanceled   TaskStatus = "canceled"
)

// TaskType is a Meilisearch task type.
type TaskType string

// Task types the double produces.
const (
	TaskDocumentAdditionOrUpdate TaskType = "documentAdditionOrUpdate"
	TaskDocumentDeletion         TaskType = "documentDeletion"
	TaskIndexCreation            TaskType = "indexCreation"
	TaskIndexDeletion            TaskType = "indexDeletion"
	TaskIndexUpdate              TaskType = "indexUpdate"
	TaskSettingsUpdate           TaskType = "settingsUpdate"
	TaskCancelation              TaskType = "taskCancelation"
	TaskDeletion                 TaskType = "taskDeletion"
)

var taskStatuses = []TaskStatus{TaskEnqueued, TaskProcessing, TaskSucceeded, TaskFailed, TaskCanceled}

// knownTaskTypes are all of Meilisearch's task types (accepted by GET /tasks?types=).
var knownTaskTypes = []string{
	"documentAdditionOrUpdate", "documentEdition", "documentDeletion", "settingsUpdate",
	"indexCreation", "indexDeletion", "indexUpdate", "indexSwap", "taskCancelation",
	"taskDeletion", "dumpCreation", "snapshotCreation", "export", "upgradeDatabase",
	"indexCompaction", "networkTopologyChange",
}

// Task is a snapshot of a task, as returned by Tasks, Step and given to FailTasksMatching.
type Task struct {
	UID      int64
	IndexUID string // "" for global tasks (taskCancelation, taskDeletion)
	Status   TaskStatus
	Type     TaskType
	// Details are the task details as GET /tasks/{uid} shows them (numbers are int64 or nil).
	Details        map[string]any
	Error          *APIError
	CanceledBy     *int64
	EnqueuedAt     time.Time
	StartedAt      time.Time
	FinishedAt     time.Time
	CustomMetadata string
}

// Duration is how long the task processed, zero while it has not finished.
func (t Task) Duration() time.Duration {
	if t.FinishedAt.IsZero() || t.StartedAt.IsZero() {
		return 0
	}
	return t.FinishedAt.Sub(t.StartedAt)
}

// detail is one entry of a task's details; details keep Meilisearch's key order.
type detail struct {
	key   string
	value any
}

type details []detail

func (d details) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, e := range d {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(e.key)
		b.Write(k)
		b.WriteByte(':')
		v, err := json.Marshal(e.value)
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func (d *details) set(key string, value any) {
	for i := range *d {
		if (*d)[i].key == key {
			(*d)[i].value = value
			return
		}
	}
	*d = append(*d, detail{key, value})
}

func (d details) toMap() map[string]any {
	m := make(map[string]any, len(d))
	for _, e := range d {
		v := e.value
		if raw, ok := v.(json.RawMessage); ok {
			var decoded any
			_ = json.Unmarshal(raw, &decoded)
			v = decoded
		}
		m[e.key] = v
	}
	return m
}

// operation is what a task does. apply runs on the worker (serialised by procMu), reads server
// state freely (only the worker writes it) and takes s.mu for writing to change it. It returns
// the details to record, or the error that fails the task. failed returns the details of a
// task that did nothing (failed or canceled).
type operation interface {
	apply(s *Server, t *task) (details, *APIError)
	failed() details
}

type task struct {
	uid            int64
	batchUID       *int64
	indexUID       string
	kind           TaskType
	status         TaskStatus
	details        details
	err            *APIError
	canceledBy     *int64
	enqueuedAt     time.Time
	startedAt      time.Time
	finishedAt     time.Time
	customMetadata string
	op             operation // dropped once finished, to free payloads
}

// taskView is the JSON of GET /tasks/{uid}.
type taskView struct {
	UID            int64      `json:"uid"`
	BatchUID       *int64     `json:"batchUid"`
	IndexUID       *string    `json:"indexUid"`
	Status         TaskStatus `json:"status"`
	Type           TaskType   `json:"type"`
	CanceledBy     *int64     `json:"canceledBy"`
	Details        details    `json:"details"`
	Error          *APIError  `json:"error"`
	Duration       *string    `json:"duration"`
	EnqueuedAt     time.Time  `json:"enqueuedAt"`
	StartedAt      *time.Time `json:"startedAt"`
	FinishedAt     *time.Time `json:"finishedAt"`
	CustomMetadata *string    `json:"customMetadata,omitempty"`
}

func (t *task) view() taskView {
	v := taskView{
		UID:        t.uid,
		BatchUID:   t.batchUID,
		Status:     t.status,
		Type:       t.kind,
		CanceledBy: t.canceledBy,
		Details:    t.details,
		Error:      t.err,
		EnqueuedAt: t.enqueuedAt,
	}
	if v.Details == nil {
		v.Details = details{}
	}
	if t.indexUID != "" {
		uid := t.indexUID
		v.IndexUID = &uid
	}
	if !t.startedAt.IsZero() {
		st := t.startedAt
		v.StartedAt = &st
	}
	if !t.finishedAt.IsZero() {
		ft := t.finishedAt
		v.FinishedAt = &ft
		if !t.startedAt.IsZero() {
			d := isoDuration(t.finishedAt.Sub(t.startedAt))
			v.Duration = &d
		}
	}
	if t.customMetadata != "" {
		cm := t.customMetadata
		v.CustomMetadata = &cm
	}
	return v
}

// summaryView is the 202 body of a write: Meilisearch's summarized task.
type summaryView struct {
	TaskUID    int64      `json:"taskUid"`
	IndexUID   *string    `json:"indexUid"`
	Status     TaskStatus `json:"status"`
	Type       TaskType   `json:"type"`
	EnqueuedAt time.Time  `json:"enqueuedAt"`
}

func (t *task) summary() summaryView {
	v := summaryView{TaskUID: t.uid, Status: t.status, Type: t.kind, EnqueuedAt: t.enqueuedAt}
	if t.indexUID != "" {
		uid := t.indexUID
		v.IndexUID = &uid
	}
	return v
}

func (t *task) snapshot() Task {
	return Task{
		UID:            t.uid,
		IndexUID:       t.indexUID,
		Status:         t.status,
		Type:           t.kind,
		Details:        t.details.toMap(),
		Error:          t.err,
		CanceledBy:     t.canceledBy,
		EnqueuedAt:     t.enqueuedAt,
		StartedAt:      t.startedAt,
		FinishedAt:     t.finishedAt,
		CustomMetadata: t.customMetadata,
	}
}

func (t *task) finished() bool {
	return t.status == TaskSucceeded || t.status == TaskFailed || t.status == TaskCanceled
}

// isoDuration formats d as ISO 8601, the way Meilisearch reports task durations ("PT0.0123S").
func isoDuration(d time.Duration) string {
	var b bytes.Buffer
	b.WriteString("PT")
	if h := d / time.Hour; h > 0 {
		b.WriteString(strconv.FormatInt(int64(h), 10) + "H")
		d -= h * time.Hour
	}
	if m := d / time.Minute; m > 0 {
		b.WriteString(strconv.FormatInt(int64(m), 10) + "M")
		d -= m * time.Minute
	}
	b.WriteString(strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "S")
	return b.String()
}
