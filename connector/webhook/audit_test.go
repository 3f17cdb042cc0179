package webhook

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector"
)

// fakeAuditor selects by exact intersection with a set, as the audit package does.
type fakeAuditor struct {
	mu       sync.Mutex
	patterns map[string]bool
	events   []string // the events header of each audited delivery
	err      error
	order    *[]string // shared with the recorder wrapper: who stored first
}

func (f *fakeAuditor) Selects(events string) bool {
	for _, e := range strings.Split(events, ",") {
		if f.patterns[e] {
			return true
		}
	}
	return false
}

func (f *fakeAuditor) Audit(_ context.Context, h http.Header, _ []byte, _ time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.events = append(f.events, h.Get(HeaderEvents))
	if f.order != nil {
		*f.order = append(*f.order, "audit")
	}
	return nil
}

func (f *fakeAuditor) Entry(h http.Header, body []byte, at time.Time) *connector.AuditEntry {
	return &connector.AuditEntry{ReceivedAt: at, Events: h.Get(HeaderEvents), Payload: body}
}

// orderRecorder notes when the change is recorded relative to the audit entry.
type orderRecorder struct {
	*fakeRecorder
	order *[]string
}

func (o orderRecorder) Record(ctx context.Context, ch connector.Change) (Recorded, error) {
	*o.order = append(*o.order, "record")
	return o.fakeRecorder.Record(ctx, ch)
}

const (
	userHeader = "users.u1.create,users.*.create,users.u1,users.*"
	fileHeader = "buckets.b1.files.f1.create,buckets.*.files.*.create,buckets.b1.files.*,buckets.*.files.*,buckets.b1,buckets.*"
)

func auditSetup(t *testing.T, patterns ...string) (*testBundle, *fakeAuditor, *[]string) {
	order := &[]string{}
	a := &fakeAuditor{patterns: map[string]bool{}, order: order}
	for _, p := range patterns {
		a.patterns[p] = true
	}
	b := setup(t, func(o *Options) {
		o.Audit = a
		o.Recorder = orderRecorder{o.Recorder.(*fakeRecorder), order}
	})
	return b, a, order
}

// User and file events are recorded in the audit log and answered as recorded only when
// audit.events selects them; otherwise the answer is exactly today's.
func TestAuditSelectsUserAndFileEvents(t *testing.T) {
	t.Parallel()
	b, a, _ := auditSetup(t, "users.*")
	plain := setup(t, nil) // no audit log at all: today's answers
	body := []byte(`{"$id":"u1","name":"Ada"}`)
	sig := Sign(testURL, b.key, body)

	w, resp := b.post(t, testPath, userHeader, sig, body, nil)
	require.Equal(t, http.StatusOK, w.Code)
	assert.Equal(t, map[string]any{"recorded": true, "audit": true}, resp)
	assert.Equal(t, []string{userHeader}, a.events)
	assert.Equal(t, OutcomeAudited, b.observed()[0].Outcome)
	assert.True(t, b.observed()[0].Audited)

	// A file event is not selected by users.*: the answer is the one without an audit log.
	w, resp = b.post(t, testPath, fileHeader, sig, body, nil)
	pw, presp := plain.post(t, testPath, fileHeader, sig, body, nil)
	require.Equal(t, pw.Code, w.Code)
	assert.Equal(t, presp, resp)
	assert.Equal(t, pw.Body.String(), w.Body.String())
	assert.Equal(t, map[string]any{"ignored": true, "reason": "buckets.b1.files.f1.create is not a row event"}, resp)
	assert.Len(t, a.events, 1)
	assert.Equal(t, 0, b.rec.stored())

	b2, a2, _ := auditSetup(t, "buckets.*.files.*")
	w, resp = b2.post(t, testPath, fileHeader, sig, body, nil)
	require.Equal(t, http.StatusOK, w.Code)
	assert.Equal(t, map[string]any{"recorded": true, "audit": true}, resp)
	assert.Equal(t, []string{fileHeader}, a2.events)
}

// A selected row change carries its entry to the recorder (which commits both in one
// transaction) and is answered as today, without a commit of the audit log's own; a selected
// row of an unmapped table is audited alone.
func TestAuditRowChangeRidesWithTheChange(t *testing.T) {
	t.Parallel()
	b, a, order := auditSetup(t, "databases.*.tables.*.rows.*.update")
	w, resp := b.post(t, testPath, testHeader, b.rowSig, b.row, nil)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	assert.Equal(t, map[string]any{"recorded": true, "result": "new"}, resp)
	assert.Equal(t, []string{"record"}, *order)
	assert.Empty(t, a.events)
	require.Len(t, b.rec.changes, 1)
	require.NotNil(t, b.rec.changes[0].Audit)
	assert.Equal(t, testHeader, b.rec.changes[0].Audit.Events)
	assert.Equal(t, b.row, b.rec.changes[0].Audit.Payload)
	assert.True(t, b.observed()[0].Audited)

	// Not selected: no entry rides with the change.
	plain, _, _ := auditSetup(t, "users.*")
	w, _ = plain.post(t, testPath, testHeader, plain.rowSig, plain.row, nil)
	require.Equal(t, http.StatusOK, w.Code)
	require.Len(t, plain.rec.changes, 1)
	assert.Nil(t, plain.rec.changes[0].Audit)

	b.handler.mapped = func(connector.TableKey) bool { return false }
	w, resp = b.post(t, testPath, testHeader, b.rowSig, b.row, nil)
	require.Equal(t, http.StatusOK, w.Code)
	assert.Equal(t, map[string]any{"recorded": true, "audit": true}, resp)
	assert.Len(t, a.events, 1)
}

// When the audit entry cannot be committed the delivery is refused whole: 503, and its row
// change is not recorded either (never a 200 without the entry). A row change's entry commits
// with it, so the recorder's failure is the entry's.
func TestAuditFailureIs503(t *testing.T) {
	t.Parallel()
	b, a, order := auditSetup(t, "databases.*.tables.*.rows.*.update", "users.*")
	a.err = errors.New("state store down")
	b.rec.recordErr = errors.New("state store down")
	w, resp := b.post(t, testPath, testHeader, b.rowSig, b.row, nil)
	require.Equal(t, http.StatusServiceUnavailable, w.Code)
	assert.Contains(t, resp["error"], "audit log")
	assert.Equal(t, []string{"record"}, *order)
	assert.Equal(t, 0, b.rec.stored())
	assert.Equal(t, OutcomeUnavailable, b.observed()[0].Outcome)
	assert.False(t, b.observed()[0].Audited)
	body := []byte(`{"$id":"u1"}`)
	w, _ = b.post(t, testPath, userHeader, Sign(testURL, b.key, body), body, nil)
	require.Equal(t, http.StatusServiceUnavailable, w.Code)
}

// A change the state store refuses for its content is quarantined, and its delivery audited
// alone first (its entry did not commit with it).
func TestAuditPermanentRefusalIsAuditedAlone(t *testing.T) {
	t.Parallel()
	b, a, _ := auditSetup(t, "databases.*.tables.*.rows.*.update")
	b.rec.recordErr = connector.Permanent("the state store refused the change", errors.New("invalid input"))
	w, _ := b.post(t, testPath, testHeader, b.rowSig, b.row, nil)
	require.Equal(t, http.StatusAccepted, w.Code, w.Body.String())
	assert.Equal(t, []string{testHeader}, a.events)
	assert.Len(t, b.rec.quarantined, 1)
	assert.True(t, b.observed()[0].Audited)
}
