package meilisink

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector/sink/sinktest"
	"github.com/appwrite-sync/appwrite-sync/internal/meilitest"
	"github.com/appwrite-sync/appwrite-sync/mapping"
)

// poisonMarker in a document makes its addition task fail (see newDouble).
const poisonMarker = "POISON-b1f2"

// poisonCode is the code poisoned tasks fail with: what Meilisearch answers for a document
// whose _geo value it cannot read.
const poisonCode = "invalid_document_geo_field"

// testBundle is a double reached through a tagging proxy: a document write whose body holds
// poisonMarker is tagged with customMetadata=poison on its way, and the double fails tagged
// tasks. The proxy only adds a query parameter Meilisearch knows; the double's behaviour is
// its own. This stands in for "a value Meilisearch rejects", which no field of the test
// mapping can produce on a real server (title and views take any JSON value).
type testBundle struct {
	srv *meilitest.Server
	url string
}

func newDouble(t testing.TB, opts meilitest.Options) *testBundle {
	t.Helper()
	srv := meilitest.NewUnstarted(opts)
	t.Cleanup(srv.Close)
	srv.FailTasksMatching(func(tk meilitest.Task) bool { return tk.CustomMetadata == "poison" }, poisonCode)
	proxy := httptest.NewServer(poisonTagger(srv))
	t.Cleanup(proxy.Close)
	return &testBundle{srv: srv, url: proxy.URL}
}

// poisonTagger tags the document writes that carry poisonMarker, then serves the request.
func poisonTagger(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/documents") && r.Body != nil {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			if bytes.Contains(body, []byte(poisonMarker)) {
				q := r.URL.Query()
				q.Set("customMetadata", "poison")
				r.URL.RawQuery = q.Encode()
			}
		}
		next.ServeHTTP(w, r)
	})
}

func quietLog() *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return logrus.NewEntry(l)
}

// parseMapping parses a `tables:` list.
func parseMapping(t testing.TB, text string) *mapping.Mapping {
	t.Helper()
	return sinktest.ParseMapping(t, "test", text)
}

func (b *testBundle) open(t testing.TB, m *mapping.Mapping, mod func(*Options)) *Sink {
	t.Helper()
	o := Options{URL: b.url, Mapping: m, Log: testLog(), Timeout: 5 * time.Second}
	if mod != nil {
		mod(&o)
	}
	s, err := New(o)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func testLog() *logrus.Entry {
	if os.Getenv("TEST_LOG") == "" {
		return quietLog()
	}
	l := logrus.New()
	l.SetLevel(logrus.DebugLevel)
	return logrus.NewEntry(l)
}
