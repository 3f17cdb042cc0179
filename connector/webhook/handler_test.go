package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector"
)

func init() { gin.SetMode(gin.TestMode) }

const (
	testURL    = "https://sync.example.com/webhooks/appwrite"
	testPath   = "/webhooks/appwrite"
	rowEvent   = "databases.main.tables.posts.rows.post.2026.03.26.update"
	testHeader = rowEvent + ",databases.*.tables.*.rows.*.update,databases.main.tables.posts.rows.*"
)

// fakeRecorder stores in memory, or fails on demand.
type fakeRecorder struct {
	mu            sync.Mutex
	changes       []connector.Change
	quarantined   []Quarantined
	recordErr     error
	quarantineErr error
	result        Recorded // what Record says it did
}

func (f *fakeRecorder) Record(_ context.Context, ch connector.Change) (Recorded, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.recordErr != nil {
		return 0, f.recordErr
	}
	f.changes = append(f.changes, ch)
	return f.result, nil
}

func (f *fakeRecorder) Quarantine(_ context.Context, q Quarantined) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.quarantineErr != nil {
		return f.quarantineErr
	}
	f.quarantined = append(f.quarantined, q)
	return nil
}

func (f *fakeRecorder) stored() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.changes) + len(f.quarantined)
}

// testBundle is what a handler test works with.
type testBundle struct {
	engine  *gin.Engine
	handler *Handler
	rec     *fakeRecorder
	logs    *logtest.Hook
	key     string // the signing key (from the openssl fixture)
	row     []byte // testdata/bodies/row.json
	rowSig  string // its openssl signature for testURL
	mu      sync.Mutex
	results []Result
}

func (b *testBundle) observed() []Result {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Result(nil), b.results...)
}

// setup builds a handler on a real gin engine. edit may change the options before use.
func setup(t *testing.T, edit func(*Options)) *testBundle {
	t.Helper()
	fixture := loadSignatureCases(t)[0]
	require.Equal(t, "plain url", fixture.Name)
	require.Equal(t, testURL, fixture.ConfiguredURL)
	b := &testBundle{rec: &fakeRecorder{}, key: fixture.Keys[0], row: readBodyFixture(t, fixture.Body), rowSig: fixture.Signature}
	v, err := NewVerifier(testURL, []string{b.key})
	require.NoError(t, err)
	logger, hook := logtest.NewNullLogger()
	logger.SetLevel(logrus.DebugLevel)
	b.logs = hook
	clock := time.Date(2026, 3, 26, 10, 0, 0, 0, time.UTC)
	opts := Options{
		Endpoints:    []Endpoint{{Name: "webhooks[0]", URL: testURL, Verifier: v}},
		MaxBodyBytes: 1 << 20,
		Recorder:     b.rec,
		Mapped:       func(k connector.TableKey) bool { return k == connector.TableKey{Database: "main", Table: "posts"} },
		Log:          logrus.NewEntry(logger),
		Observe: func(r Result) {
			b.mu.Lock()
			defer b.mu.Unlock()
			b.results = append(b.results, r)
		},
		Now: func() time.Time { clock = clock.Add(time.Millisecond); return clock },
	}
	if edit != nil {
		edit(&opts)
	}
	b.handler, err = NewHandler(opts)
	require.NoError(t, err)
	b.engine = gin.New()
	b.handler.Routes(b.engine)
	return b
}

// post sends a delivery the way Appwrite does.
func (b *testBundle) post(t *testing.T, path, events, sig string, body []byte, edit func(*http.Request)) (*httptest.ResponseRecorder, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Appwrite-Server v1.9.5. Please report abuse at security@appwrite.io")
	req.Header.Set(HeaderID, "wh1")
	req.Header.Set(HeaderName, "sync")
	req.Header.Set(HeaderProjectID, "proj1")
	if events != "" {
		req.Header.Set(HeaderEvents, events)
	}
	if sig != "" {
		req.Header.Set(HeaderSignature, sig)
	}
	if edit != nil {
		edit(req)
	}
	w := httptest.NewRecorder()
	b.engine.ServeHTTP(w, req)
	var resp map[string]any
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &resp), "every answer is a JSON object: %s", w.Body.String())
	return w, resp
}

// TestHandlerAnswersWhatRecordingDid: the 200 says whether the change was new, stale or a
// duplicate, and each pre-rendered answer is byte for byte what gin renders for it.
func TestHandlerAnswersWhatRecordingDid(t *testing.T) {
	t.Parallel()
	for _, r := range []Recorded{RecordedNew, RecordedStale, RecordedDuplicate} {
		t.Run(r.String(), func(t *testing.T) {
			t.Parallel()
			b := setup(t, nil)
			b.rec.result = r
			w, resp := b.post(t, testPath, testHeader, b.rowSig, b.row, nil)
			require.Equal(t, http.StatusOK, w.Code, w.Body.String())
			assert.Equal(t, map[string]any{"recorded": true, "result": r.String()}, resp)
			rendered := httptest.NewRecorder()
			gc, _ := gin.CreateTestContext(rendered)
			gc.JSON(http.StatusOK, gin.H{"recorded": true, "result": r.String()})
			assert.Equal(t, rendered.Body.String(), w.Body.String())
			assert.Equal(t, rendered.Header().Get("Content-Type"), w.Header().Get("Content-Type"))
			require.Len(t, b.observed(), 1)
			assert.Equal(t, r, b.observed()[0].Recorded)
		})
	}
}

func TestHandlerRecords(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	w, resp := b.post(t, testPath, testHeader, b.rowSig, b.row, nil)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	assert.Equal(t, map[string]any{"recorded": true, "result": "new"}, resp)
	require.Len(t, b.rec.changes, 1)
	ch := b.rec.changes[0]
	assert.Equal(t, connector.TableKey{Database: "main", Table: "posts"}, ch.Key)
	assert.Equal(t, "post.2026.03.26", ch.RowID)
	assert.Equal(t, connector.OpUpsert, ch.Op)
	assert.Equal(t, rowEvent, ch.Event)
	assert.Equal(t, "1234", ch.Sequence)
	assert.Equal(t, string(b.row), string(ch.Row))
	assert.Empty(t, ch.Actor, "no X-Appwrite-Webhook-User-Id: an API-key write")
	assert.Equal(t, connector.SourceWebhook, ch.Source)

	res := b.observed()
	require.Len(t, res, 1)
	assert.Equal(t, OutcomeRecorded, res[0].Outcome)
	assert.Equal(t, http.StatusOK, res[0].Status)
	assert.Equal(t, "webhooks[0]", res[0].Webhook)
	assert.Equal(t, rowEvent, res[0].Event)
	assert.Equal(t, "main/posts", res[0].Table)
	assert.Equal(t, "post.2026.03.26", res[0].RowID)
	assert.Positive(t, res[0].Latency)

	require.Len(t, b.logs.AllEntries(), 1, "one log line per request")
	e := b.logs.LastEntry()
	assert.Equal(t, logrus.DebugLevel, e.Level)
	for k, want := range map[string]any{"status": 200, "webhook": "webhooks[0]", "event": rowEvent,
		"table": "main/posts", "row_id": "post.2026.03.26", "outcome": "recorded"} {
		assert.Equal(t, want, e.Data[k], k)
	}
	assert.Contains(t, e.Data, "latency_ms")
}

// The acting user of a delivery (X-Appwrite-Webhook-User-Id) goes with its change; an empty
// header (API-key writes) is no actor.
func TestHandlerKeepsTheActingUser(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	for _, user := range []string{"u42", ""} {
		w, _ := b.post(t, testPath, testHeader, b.rowSig, b.row, func(r *http.Request) { r.Header.Set(HeaderUserID, user) })
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	}
	require.Len(t, b.rec.changes, 2)
	assert.Equal(t, "u42", b.rec.changes[0].Actor)
	assert.Empty(t, b.rec.changes[1].Actor)
	assert.Equal(t, rowEvent, b.rec.changes[0].Event)
}

func TestHandlerBodyLimit(t *testing.T) {
	t.Parallel()
	t.Run("exactly the limit is accepted", func(t *testing.T) {
		t.Parallel()
		b := setup(t, func(o *Options) { o.MaxBodyBytes = int64(len(readBodyFixture(t, "row.json"))) })
		w, _ := b.post(t, testPath, testHeader, b.rowSig, b.row, nil)
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		require.Len(t, b.rec.changes, 1)
	})
	t.Run("exactly the limit without Content-Length", func(t *testing.T) {
		t.Parallel()
		b := setup(t, func(o *Options) { o.MaxBodyBytes = int64(len(readBodyFixture(t, "row.json"))) })
		w, _ := b.post(t, testPath, testHeader, b.rowSig, b.row, func(r *http.Request) {
			r.ContentLength = -1
			r.Body = io.NopCloser(iotestOneByte(bytes.NewReader(b.row)))
		})
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		require.Len(t, b.rec.changes, 1)
	})
	t.Run("one byte over is 413 and stores nothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t, func(o *Options) { o.MaxBodyBytes = int64(len(readBodyFixture(t, "row.json"))) })
		body := append(append([]byte(nil), b.row...), ' ')
		w, resp := b.post(t, testPath, testHeader, Sign(testURL, b.key, body), body, nil)
		require.Equal(t, http.StatusRequestEntityTooLarge, w.Code)
		assert.Contains(t, resp["error"], "limits.max_body_bytes")
		assert.Equal(t, "webhooks[0]", resp["webhook"])
		assert.Zero(t, b.rec.stored())
		assert.Equal(t, OutcomeTooLarge, b.observed()[0].Outcome)
	})
	t.Run("one byte over without Content-Length", func(t *testing.T) {
		t.Parallel()
		b := setup(t, func(o *Options) { o.MaxBodyBytes = int64(len(readBodyFixture(t, "row.json"))) })
		body := append(append([]byte(nil), b.row...), ' ')
		w, _ := b.post(t, testPath, testHeader, Sign(testURL, b.key, body), body, func(r *http.Request) {
			r.ContentLength = -1
			r.Body = io.NopCloser(bytes.NewReader(body))
		})
		require.Equal(t, http.StatusRequestEntityTooLarge, w.Code)
		assert.Zero(t, b.rec.stored())
	})
	t.Run("Content-Length over the limit is refused before reading", func(t *testing.T) {
		t.Parallel()
		b := setup(t, func(o *Options) { o.MaxBodyBytes = 100 })
		w, resp := b.post(t, testPath, testHeader, b.rowSig, nil, func(r *http.Request) {
			r.ContentLength = 101
			r.Body = io.NopCloser(readFails{t})
		})
		require.Equal(t, http.StatusRequestEntityTooLarge, w.Code)
		assert.EqualValues(t, 100, resp["limit"])
		assert.Zero(t, b.rec.stored())
	})
}

// readFails fails the test if the handler reads the body.
type readFails struct{ t *testing.T }

func (r readFails) Read([]byte) (int, error) {
	r.t.Error("body was read although Content-Length was over the limit")
	return 0, io.EOF
}

// iotestOneByte returns a reader that yields one byte per Read, like a slow chunked client.
func iotestOneByte(r io.Reader) io.Reader { return oneByte{r} }

type oneByte struct{ r io.Reader }

func (o oneByte) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return o.r.Read(p[:1])
}

func TestHandlerSignatureRejected(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	expected := b.rowSig
	for name, sig := range map[string]string{
		"missing": "",
		"wrong":   Sign(testURL+"/", b.key, b.row),
		"garbage": "not-a-signature",
	} {
		w, resp := b.post(t, testPath, testHeader, sig, b.row, nil)
		require.Equal(t, http.StatusUnauthorized, w.Code, name)
		assert.Equal(t, "webhooks[0]", resp["webhook"], name)
		assert.NotEmpty(t, resp["error"], name)
		hint, _ := resp["hint"].(string)
		for _, must := range []string{"webhooks[0]", "trailing slash", "proxy", "signing_keys"} {
			assert.Contains(t, hint, must, name)
		}
		assert.NotContains(t, w.Body.String(), expected, "%s: the expected signature never leaks", name)
		assert.NotContains(t, w.Body.String(), b.key, name)
		assert.Empty(t, w.Header().Get("WWW-Authenticate"), "%s: no basic auth configured", name)
	}
	assert.Contains(t, b.post2xxless(t), "missing X-Appwrite-Webhook-Signature header")
	assert.Zero(t, b.rec.stored())
	for _, e := range b.logs.AllEntries() {
		assert.Equal(t, logrus.WarnLevel, e.Level)
		line, err := e.String()
		require.NoError(t, err)
		assert.NotContains(t, line, expected)
		assert.NotContains(t, line, b.key)
		assert.NotContains(t, line, "Caf", "no body in logs")
	}
	for _, r := range b.observed() {
		assert.Equal(t, OutcomeUnauthorized, r.Outcome)
		assert.Empty(t, r.Event, "an unauthenticated events header is not reported")
	}
}

// post2xxless returns the error of a request without signature.
func (b *testBundle) post2xxless(t *testing.T) string {
	_, resp := b.post(t, testPath, testHeader, "", b.row, nil)
	s, _ := resp["error"].(string)
	return s
}

func TestHandlerTrailingSlashIsNotRedirected(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	// Appwrite configured with a trailing slash, appwrite-sync without: gin would answer 307,
	// which Appwrite counts as delivered. It must be a 401 that says why.
	w, resp := b.post(t, testPath+"/", testHeader, Sign(testURL+"/", b.key, b.row), b.row, nil)
	require.Equal(t, http.StatusUnauthorized, w.Code)
	assert.Contains(t, resp["hint"], "arrived at "+testPath+"/")
	assert.Zero(t, b.rec.stored())
}

func TestHandlerBasicAuth(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *Options) { o.Endpoints[0].BasicUser, o.Endpoints[0].BasicPass = "appwrite", "s3cret" })
	for name, edit := range map[string]func(*http.Request){
		"missing": nil,
		"wrong":   func(r *http.Request) { r.SetBasicAuth("appwrite", "nope") },
		"user":    func(r *http.Request) { r.SetBasicAuth("root", "s3cret") },
	} {
		w, resp := b.post(t, testPath, testHeader, b.rowSig, b.row, edit)
		require.Equal(t, http.StatusUnauthorized, w.Code, name)
		assert.Contains(t, w.Header().Get("WWW-Authenticate"), "Basic", name)
		assert.Contains(t, resp["error"], "basic auth", name)
		assert.NotContains(t, w.Body.String(), "s3cret", name)
	}
	// Right credentials but a bad signature: still 401.
	w, _ := b.post(t, testPath, testHeader, Sign(testURL, "other", b.row), b.row,
		func(r *http.Request) { r.SetBasicAuth("appwrite", "s3cret") })
	require.Equal(t, http.StatusUnauthorized, w.Code)
	assert.Zero(t, b.rec.stored())

	w, _ = b.post(t, testPath, testHeader, b.rowSig, b.row, func(r *http.Request) { r.SetBasicAuth("appwrite", "s3cret") })
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	assert.Len(t, b.rec.changes, 1)
}

// Handle, the entry without HTTP, checks basic auth itself: only serveHTTP checks it earlier.
func TestHandleChecksBasicAuth(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *Options) { o.Endpoints[0].BasicUser, o.Endpoints[0].BasicPass = "appwrite", "s3cret" })
	ep := b.handler.endpoints[0]
	h := http.Header{}
	h.Set(HeaderEvents, testHeader)
	h.Set(HeaderSignature, b.rowSig)
	status, _, res := b.handler.Handle(context.Background(), ep, h, b.row)
	require.Equal(t, http.StatusUnauthorized, status)
	require.Equal(t, "basic auth missing or wrong", res.Reason)
	req := &http.Request{Header: h}
	req.SetBasicAuth("appwrite", "s3cret")
	status, _, _ = b.handler.Handle(context.Background(), ep, h, b.row)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, 1, b.rec.stored())
}

func TestHandlerIgnored(t *testing.T) {
	t.Parallel()
	t.Run("unmapped table", func(t *testing.T) {
		t.Parallel()
		b := setup(t, func(o *Options) { o.Mapped = func(connector.TableKey) bool { return false } })
		w, resp := b.post(t, testPath, testHeader, b.rowSig, b.row, nil)
		require.Equal(t, http.StatusOK, w.Code)
		assert.Equal(t, map[string]any{"ignored": true, "reason": "table main/posts is not mapped"}, resp)
		assert.Zero(t, b.rec.stored())
		assert.Equal(t, OutcomeIgnored, b.observed()[0].Outcome)
	})
	t.Run("not a row event", func(t *testing.T) {
		t.Parallel()
		b := setup(t, nil)
		body := []byte(`{"$id":"u1","name":"Zo\u00e9","email":"z@example.com"}`)
		w, resp := b.post(t, testPath, "users.u1.create,users.*.create,users.u1,users.*", Sign(testURL, b.key, body), body, nil)
		require.Equal(t, http.StatusOK, w.Code)
		assert.Equal(t, true, resp["ignored"])
		assert.Contains(t, resp["reason"], "users.u1.create is not a row event")
		assert.Zero(t, b.rec.stored())
	})
}

func TestHandlerQuarantine(t *testing.T) {
	t.Parallel()
	body := []byte(`{"$id":"r1","$databaseId":"main","$tableId":"posts","$updatedAt":"not a date"}`)
	t.Run("undecodable is 202 and kept", func(t *testing.T) {
		t.Parallel()
		b := setup(t, nil)
		sig := Sign(testURL, b.key, body)
		w, resp := b.post(t, testPath, "databases.main.tables.posts.rows.r1.update", sig, body,
			func(r *http.Request) {
				r.Header.Set("Authorization", "Bearer should-not-be-kept")
				r.Header.Set(HeaderUserID, "u42")
			})
		require.Equal(t, http.StatusAccepted, w.Code, w.Body.String())
		assert.Equal(t, true, resp["quarantined"])
		assert.Contains(t, resp["reason"], "$updatedAt")
		require.Len(t, b.rec.quarantined, 1)
		assert.Empty(t, b.rec.changes)
		q := b.rec.quarantined[0]
		assert.Equal(t, "webhooks[0]", q.Webhook)
		assert.Equal(t, resp["reason"], q.Reason)
		assert.Equal(t, string(body), string(q.Body))
		assert.Equal(t, map[string]string{
			HeaderEvents:    "databases.main.tables.posts.rows.r1.update",
			HeaderID:        "wh1",
			HeaderName:      "sync",
			HeaderProjectID: "proj1",
			HeaderUserID:    "u42", // a replay keeps the acting user
			"User-Agent":    "Appwrite-Server v1.9.5. Please report abuse at security@appwrite.io",
		}, q.Headers, "never Authorization or the signature")
		assert.False(t, q.ReceivedAt.IsZero())
		assert.Equal(t, OutcomeQuarantined, b.observed()[0].Outcome)
	})
	t.Run("no events header is quarantined", func(t *testing.T) {
		t.Parallel()
		b := setup(t, nil)
		w, _ := b.post(t, testPath, "", b.rowSig, b.row, nil)
		require.Equal(t, http.StatusAccepted, w.Code)
		require.Len(t, b.rec.quarantined, 1)
	})
	t.Run("quarantine failure is 503", func(t *testing.T) {
		t.Parallel()
		b := setup(t, nil)
		b.rec.quarantineErr = errors.New("connection refused")
		w, resp := b.post(t, testPath, "databases.main.tables.posts.rows.r1.update", Sign(testURL, b.key, body), body, nil)
		require.Equal(t, http.StatusServiceUnavailable, w.Code)
		assert.Contains(t, resp["error"], "state store unavailable")
		assert.Equal(t, strconv.Itoa(RetryAfterSeconds), w.Header().Get("Retry-After"))
	})
}

func TestHandlerUnavailable(t *testing.T) {
	t.Parallel()
	t.Run("recorder error", func(t *testing.T) {
		t.Parallel()
		b := setup(t, nil)
		b.rec.recordErr = errors.New("dial tcp 10.0.0.5:5432: connection refused")
		w, resp := b.post(t, testPath, testHeader, b.rowSig, b.row, nil)
		require.Equal(t, http.StatusServiceUnavailable, w.Code)
		assert.Equal(t, "state store unavailable; change not stored", resp["error"])
		assert.Equal(t, strconv.Itoa(RetryAfterSeconds), w.Header().Get("Retry-After"))
		assert.NotContains(t, w.Body.String(), "10.0.0.5", "internal errors are logged, not answered")
		assert.Equal(t, logrus.ErrorLevel, b.logs.LastEntry().Level)
		assert.Equal(t, OutcomeUnavailable, b.observed()[0].Outcome)
	})
	t.Run("recorder refuses the change", func(t *testing.T) {
		// Not the state store's fault: the change is kept raw for a look, and answered 202.
		t.Parallel()
		b := setup(t, nil)
		b.rec.recordErr = connector.Permanent("the state store refused the change", errors.New("ERROR: index row size 3024 exceeds btree version 4 maximum 2704 (SQLSTATE 54000)"))
		w, resp := b.post(t, testPath, testHeader, b.rowSig, b.row, nil)
		require.Equal(t, http.StatusAccepted, w.Code, w.Body.String())
		assert.Equal(t, true, resp["quarantined"])
		assert.Contains(t, resp["reason"], "the state store refused the change: ERROR: index row size")
		require.Len(t, b.rec.quarantined, 1)
		assert.Equal(t, b.row, b.rec.quarantined[0].Body)
		assert.Equal(t, OutcomeQuarantined, b.observed()[0].Outcome)
	})
	t.Run("NotStored", func(t *testing.T) {
		t.Parallel()
		b := setup(t, func(o *Options) { o.Recorder = NotStored{} })
		w, _ := b.post(t, testPath, testHeader, b.rowSig, b.row, nil)
		require.Equal(t, http.StatusServiceUnavailable, w.Code)
		w, _ = b.post(t, testPath, "", b.rowSig, b.row, nil)
		require.Equal(t, http.StatusServiceUnavailable, w.Code, "not even quarantine is acknowledged")
		_, err := NotStored{}.Record(context.Background(), connector.Change{})
		require.ErrorIs(t, err, ErrNotStored)
		require.ErrorIs(t, NotStored{}.Quarantine(context.Background(), Quarantined{}), ErrNotStored)
	})
}

// TestHandleWithoutHTTP drives the plain function, the way other packages can.
func TestHandleWithoutHTTP(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ep := b.handler.endpoints[0]
	h := http.Header{}
	h.Set(HeaderEvents, testHeader)
	h.Set(HeaderSignature, b.rowSig)

	status, resp, res := b.handler.Handle(context.Background(), ep, h, b.row)
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, gin.H{"recorded": true, "result": "new"}, resp)
	assert.Equal(t, OutcomeRecorded, res.Outcome)

	status, _, res = b.handler.Handle(context.Background(), nil, h, b.row)
	assert.Equal(t, http.StatusNotFound, status)
	assert.Equal(t, OutcomeNotFound, res.Outcome)

	big := bytes.Repeat([]byte(" "), 1<<20+1)
	status, _, res = b.handler.Handle(context.Background(), ep, h, big)
	assert.Equal(t, http.StatusRequestEntityTooLarge, status)
	assert.Equal(t, OutcomeTooLarge, res.Outcome)
	assert.Len(t, b.rec.changes, 1)
}

func TestRegister(t *testing.T) {
	t.Parallel()
	v, err := NewVerifier(testURL, []string{"k"})
	require.NoError(t, err)
	ok := Options{Recorder: NotStored{}, Endpoints: []Endpoint{{URL: testURL, Verifier: v}}}
	require.NoError(t, Register(gin.New(), ok))

	h, err := NewHandler(ok)
	require.NoError(t, err)
	assert.Equal(t, "webhooks[0]", h.endpoints[0].Name, "default name")
	assert.Equal(t, testPath, h.endpoints[0].Path, "default path: the path of the url")
	assert.Equal(t, MaxBodyBytesDefault, h.maxBody)

	v2, err := NewVerifier("https://sync.example.com/a%20b", []string{"k"})
	require.NoError(t, err)
	h, err = NewHandler(Options{Recorder: NotStored{}, Endpoints: []Endpoint{{Verifier: v2}}})
	require.NoError(t, err)
	assert.Equal(t, "https://sync.example.com/a%20b", h.endpoints[0].URL, "url defaults to the verifier's")
	assert.Equal(t, "/a b", h.endpoints[0].Path, "the router matches decoded paths")

	bad := []struct {
		name string
		opts Options
		want string
	}{
		{"duplicate path", Options{Recorder: NotStored{}, Endpoints: []Endpoint{
			{URL: testURL, Verifier: v}, {URL: "https://other.example.com/webhooks/appwrite", Verifier: v}}}, "already used by webhooks[0]"},
		{"no endpoints", Options{Recorder: NotStored{}}, "no endpoint"},
		{"no recorder", Options{Endpoints: []Endpoint{{URL: testURL, Verifier: v}}}, "no Recorder"},
		{"no verifier", Options{Recorder: NotStored{}, Endpoints: []Endpoint{{URL: testURL}}}, "signing_keys"},
		{"half basic auth", Options{Recorder: NotStored{}, Endpoints: []Endpoint{{URL: testURL, Verifier: v, BasicUser: "u"}}}, "both username and password"},
		{"relative path", Options{Recorder: NotStored{}, Endpoints: []Endpoint{{Path: "hook", Verifier: v}}}, "must start with /"},
		{"wildcard path", Options{Recorder: NotStored{}, Endpoints: []Endpoint{{Path: "/hook/*id", Verifier: v}}}, "cannot take literally"},
		{"negative limit", Options{Recorder: NotStored{}, MaxBodyBytes: -1, Endpoints: []Endpoint{{URL: testURL, Verifier: v}}}, "max_body_bytes"},
	}
	for _, tc := range bad {
		err := Register(gin.New(), tc.opts)
		require.Error(t, err, tc.name)
		assert.Contains(t, err.Error(), tc.want, tc.name)
	}
}

func TestRegisterSeveralEndpoints(t *testing.T) {
	t.Parallel()
	v1, err := NewVerifier("https://sync.example.com/a", []string{"k1"})
	require.NoError(t, err)
	v2, err := NewVerifier("https://sync.example.com/a/", []string{"k2"})
	require.NoError(t, err)
	rec := &fakeRecorder{}
	engine := gin.New()
	logger, _ := logtest.NewNullLogger()
	require.NoError(t, Register(engine, Options{Recorder: rec, Log: logrus.NewEntry(logger),
		Endpoints: []Endpoint{{Name: "a", URL: "https://sync.example.com/a", Verifier: v1},
			{Name: "a-slash", URL: "https://sync.example.com/a/", Verifier: v2}}}))
	body := []byte(`{"$id":"r1","$databaseId":"main","$tableId":"posts","$updatedAt":"2026-03-26T10:00:00.000+00:00"}`)
	for path, want := range map[string]struct{ url, key string }{
		"/a":  {"https://sync.example.com/a", "k1"},
		"/a/": {"https://sync.example.com/a/", "k2"},
	} {
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
		req.Header.Set(HeaderEvents, "databases.main.tables.posts.rows.r1.update")
		req.Header.Set(HeaderSignature, Sign(want.url, want.key, body))
		w := httptest.NewRecorder()
		engine.ServeHTTP(w, req)
		assert.Equal(t, http.StatusOK, w.Code, "%s: %s", path, w.Body.String())
	}
	assert.Len(t, rec.changes, 2)
	assert.True(t, strings.HasPrefix(rec.changes[0].Event, "databases.main"))
}

func TestHandlerBodyReadError(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	w, resp := b.post(t, testPath, testHeader, b.rowSig, nil, func(r *http.Request) {
		r.ContentLength = -1
		r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(b.row[:10]), failingReader{}))
	})
	require.Equal(t, http.StatusBadRequest, w.Code)
	assert.Contains(t, resp["error"], "could not read the request body")
	assert.Zero(t, b.rec.stored())
	assert.Equal(t, OutcomeBadRequest, b.observed()[0].Outcome)
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }

// At info level an accepted request writes no log line (it is counted), a refused one does.
func TestHandlerLogsOnlyProblemsAtInfo(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *Options) { o.Log.Logger.SetLevel(logrus.InfoLevel) })
	w, _ := b.post(t, testPath, testHeader, b.rowSig, b.row, nil)
	require.Equal(t, http.StatusOK, w.Code)
	require.Empty(t, b.logs.AllEntries())
	w, _ = b.post(t, testPath, testHeader, "bad-signature", b.row, nil)
	require.Equal(t, http.StatusUnauthorized, w.Code)
	require.Len(t, b.logs.AllEntries(), 1)
	assert.Equal(t, logrus.WarnLevel, b.logs.LastEntry().Level)
	require.Len(t, b.observed(), 2, "both are observed (metrics)")
}
