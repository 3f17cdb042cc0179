package appwrite_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/connector/appwrite"
	"github.com/appwrite-sync/appwrite-sync/internal/appwritetest"
)

func TestNewValidatesOptions(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		opts appwrite.Options
		want []string
	}{
		{"empty", appwrite.Options{}, []string{"appwrite.endpoint is empty", "appwrite.project is empty", "appwrite.api_key is empty"}},
		{"not a url", appwrite.Options{Endpoint: "://x", Project: "p", APIKey: secretKey}, []string{"appwrite.endpoint", "not a URL"}},
		{"no scheme", appwrite.Options{Endpoint: "cloud.appwrite.io/v1", Project: "p", APIKey: secretKey}, []string{"scheme must be https"}},
		{"ftp", appwrite.Options{Endpoint: "ftp://cloud.appwrite.io/v1", Project: "p", APIKey: secretKey}, []string{"scheme must be https"}},
		{"no host", appwrite.Options{Endpoint: "https:///v1", Project: "p", APIKey: secretKey}, []string{"has no host"}},
		{"userinfo", appwrite.Options{Endpoint: "https://u:pw@cloud.appwrite.io/v1", Project: "p", APIKey: secretKey}, []string{"must not carry credentials"}},
		{"query", appwrite.Options{Endpoint: "https://cloud.appwrite.io/v1?x=1", Project: "p", APIKey: secretKey}, []string{"must not have a query"}},
		{"blank key", appwrite.Options{Endpoint: "https://cloud.appwrite.io/v1", Project: "p", APIKey: "  "}, []string{"appwrite.api_key is empty"}},
		{"negative page", appwrite.Options{Endpoint: "https://cloud.appwrite.io/v1", Project: "p", APIKey: secretKey, PageSize: -1}, []string{"page size -1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := appwrite.New(tc.opts)
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
			assert.NotContains(t, err.Error(), secretKey)
		})
	}
	c, err := appwrite.New(appwrite.Options{Endpoint: "https://cloud.appwrite.io/v1/", Project: "p", APIKey: secretKey})
	require.NoError(t, err)
	assert.Equal(t, "https://cloud.appwrite.io/v1", c.Endpoint())
}

func TestAuthErrorsAreClearAndNeverShowTheKey(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	logger := logrus.New()
	logger.SetOutput(&logs)
	logger.SetLevel(logrus.DebugLevel)

	cases := []struct {
		name   string
		server appwritetest.Options
		mod    func(*appwrite.Options)
		key    connector.TableKey
		is     error
		status int
		typ    string
		want   []string
	}{
		{
			name: "wrong key", mod: func(o *appwrite.Options) { o.APIKey = secretKey + "-wrong" },
			is: appwrite.ErrUnauthorized, status: 401, typ: "user_unauthorized",
			want: []string{"the API key was rejected: check appwrite.api_key and appwrite.project"},
		},
		{
			name: "missing scope", server: appwritetest.Options{Scopes: []string{"tables.read"}},
			is: appwrite.ErrUnauthorized, status: 401, typ: "general_unauthorized_scope",
			want: []string{"missing scopes", "lacks scope rows.read", "Console → Overview → API keys"},
		},
		{
			name: "missing scope legacy", server: appwritetest.Options{Legacy: true, Scopes: []string{"collections.read"}},
			is: appwrite.ErrUnauthorized, status: 401, typ: "general_unauthorized_scope",
			want: []string{"lacks scope documents.read"},
		},
		{
			name: "wrong project", mod: func(o *appwrite.Options) { o.Project = "nope" },
			is: appwrite.ErrUnauthorized, status: 404, typ: "project_not_found",
			want: []string{`project "nope" does not exist`, "check appwrite.project and appwrite.endpoint"},
		},
		{
			name: "unknown table", key: connector.TableKey{Database: "main", Table: "nope"},
			is: appwrite.ErrTableNotFound, status: 404, typ: "table_not_found",
			want: []string{`table main/nope does not exist in project "test-project"`},
		},
		{
			name: "unknown database", key: connector.TableKey{Database: "other", Table: "posts"},
			is: appwrite.ErrTableNotFound, status: 404, typ: "database_not_found",
			want: []string{`database "other" does not exist in project "test-project"`},
		},
		{
			name: "unknown collection legacy", server: appwritetest.Options{Legacy: true}, key: connector.TableKey{Database: "main", Table: "nope"},
			is: appwrite.ErrTableNotFound, status: 404, typ: "collection_not_found",
			want: []string{`table main/nope does not exist`},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := setup(t, tc.server, func(o *appwrite.Options) {
				o.Logger = logrus.NewEntry(logger)
				if tc.mod != nil {
					tc.mod(o)
				}
			})
			b.srv.CreateTable(posts)
			key := tc.key
			if key == (connector.TableKey{}) {
				key = posts
			}
			ctx := ctxTimeout(t, 10*time.Second)
			_, err := b.client.ListRows(ctx, key, appwrite.ListQuery{})
			require.Error(t, err)
			assert.ErrorIs(t, err, tc.is)
			var ae *appwrite.APIError
			require.ErrorAs(t, err, &ae)
			assert.Equal(t, tc.status, ae.Status)
			assert.Equal(t, tc.typ, ae.Type)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
			assert.NotContains(t, err.Error(), secretKey)
			assert.Empty(t, b.clock.Sleeps(), "configuration errors are not retried")

			_, err = b.client.GetRow(ctx, key, "x")
			require.Error(t, err)
			assert.NotContains(t, err.Error(), secretKey)
		})
	}
	assert.NotContains(t, logs.String(), secretKey)
}

func TestForbiddenByAProxy(t *testing.T) {
	t.Parallel()
	b := setup(t, appwritetest.Options{}, nil)
	b.srv.CreateTable(posts)
	b.srv.Inject(appwritetest.Fault{Status: http.StatusForbidden, Body: "<html>Access denied</html>", Count: 1})
	_, err := b.client.ListRows(ctxTimeout(t, 10*time.Second), posts, appwrite.ListQuery{})
	assert.ErrorIs(t, err, appwrite.ErrUnauthorized)
	assert.ErrorContains(t, err, "403 Forbidden: <html>Access denied</html>: access was refused")
	assert.ErrorContains(t, err, "scope rows.read")
}

func TestLegacyFallbackIsRemembered(t *testing.T) {
	t.Parallel()
	b := setup(t, appwritetest.Options{Legacy: true}, nil)
	putN(b, 25)
	ctx := ctxTimeout(t, 10*time.Second)
	assert.False(t, b.client.UsesLegacyAPI())

	var seen int
	err := b.client.Scan(ctx, posts, appwrite.ListQuery{}, func(p appwrite.Page) error {
		for _, r := range p.Rows {
			assert.Contains(t, string(r), `"$collectionId":"posts"`)
		}
		seen += len(p.Rows)
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, 25, seen)
	assert.True(t, b.client.UsesLegacyAPI())

	row, err := b.client.GetRow(ctx, posts, "row007")
	require.NoError(t, err)
	assert.Contains(t, string(row), `"$id":"row007"`)
	_, err = b.client.GetRow(ctx, posts, "gone")
	assert.ErrorIs(t, err, appwrite.ErrRowNotFound)
	var ae *appwrite.APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, "document_not_found", ae.Type)

	st := b.srv.Stats()
	assert.EqualValues(t, 1, st.TablesDB, "TablesDB is tried once, then the choice is remembered")
	assert.EqualValues(t, 4+2, st.Legacy)
	for _, r := range b.srv.Requests()[1:] {
		assert.True(t, strings.HasPrefix(r.Path, "/v1/databases/main/collections/posts/documents"), r.Path)
	}
}

func TestTablesDBIsRememberedToo(t *testing.T) {
	t.Parallel()
	b := setup(t, appwritetest.Options{}, nil)
	putN(b, 3)
	ctx := ctxTimeout(t, 10*time.Second)
	_, err := b.client.GetRow(ctx, posts, "missing")
	assert.ErrorIs(t, err, appwrite.ErrRowNotFound, "row_not_found is not a reason to fall back")
	_, err = b.client.ListRows(ctx, posts, appwrite.ListQuery{})
	require.NoError(t, err)
	assert.EqualValues(t, 0, b.srv.Stats().Legacy)
	assert.False(t, b.client.UsesLegacyAPI())
}

func TestWrongEndpointSaysSo(t *testing.T) {
	t.Parallel()
	// A server that answers 404 to everything, like an endpoint without /v1.
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	c, err := appwrite.New(appwrite.Options{Endpoint: srv.URL, Project: "p", APIKey: secretKey})
	require.NoError(t, err)
	_, err = c.ListRows(ctxTimeout(t, 10*time.Second), posts, appwrite.ListQuery{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "neither the TablesDB nor the legacy Databases route exists")
	assert.Contains(t, err.Error(), "check appwrite.endpoint")
	assert.NotContains(t, err.Error(), secretKey)
}

func TestRedirectToAnotherHostIsRefused(t *testing.T) {
	t.Parallel()
	var leaked atomic.Bool
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Appwrite-Key") != "" {
			leaked.Store(true)
		}
		_, _ = w.Write([]byte(`{"total":0,"rows":[]}`))
	}))
	defer evil.Close()
	// httptest servers all listen on 127.0.0.1: reach the evil one by another host name.
	evilURL := strings.Replace(evil.URL, "127.0.0.1", "localhost", 1)
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, evilURL+r.URL.RequestURI(), http.StatusFound)
	}))
	defer redirect.Close()

	c, err := appwrite.New(appwrite.Options{Endpoint: redirect.URL + "/v1", Project: "p", APIKey: secretKey})
	require.NoError(t, err)
	_, err = c.ListRows(ctxTimeout(t, 10*time.Second), posts, appwrite.ListQuery{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "refusing redirect")
	assert.False(t, leaked.Load(), "the key must not follow a redirect to another host")
}

func TestRequestHeaders(t *testing.T) {
	t.Parallel()
	var got http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		_, _ = w.Write([]byte(`{"total":0,"rows":[]}`))
	}))
	defer srv.Close()
	c, err := appwrite.New(appwrite.Options{Endpoint: srv.URL + "/v1", Project: "proj", APIKey: secretKey})
	require.NoError(t, err)
	p, err := c.ListRows(ctxTimeout(t, 10*time.Second), posts, appwrite.ListQuery{})
	require.NoError(t, err)
	assert.Empty(t, p.Rows)
	assert.Equal(t, "proj", got.Get("X-Appwrite-Project"))
	assert.Equal(t, secretKey, got.Get("X-Appwrite-Key"))
	assert.Equal(t, "application/json", got.Get("Content-Type"))
}
