package appwrite_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/connector/appwrite"
	"github.com/appwrite-sync/appwrite-sync/internal/appwritetest"
)

// secretKey is distinctive so tests can assert it never shows up in errors.
const secretKey = "standard_0123456789abcdefSECRETKEY"

var posts = connector.TableKey{Database: "main", Table: "posts"}

// fakeClock is the client's clock and sleep: sleeping records the wait and moves time on, so
// retry tests take no real time.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	f.mu.Lock()
	f.sleeps = append(f.sleeps, d)
	f.now = f.now.Add(d)
	f.mu.Unlock()
	return ctx.Err()
}

func (f *fakeClock) Sleeps() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.sleeps...)
}

type testBundle struct {
	srv    *appwritetest.Server
	client *appwrite.Client
	clock  *fakeClock
}

// setup starts a double and a client for it. mod may adjust the client options.
func setup(t *testing.T, so appwritetest.Options, mod func(*appwrite.Options)) *testBundle {
	t.Helper()
	if so.APIKey == "" {
		so.APIKey = secretKey
	}
	srv := appwritetest.New(so)
	t.Cleanup(srv.Close)
	clock := newFakeClock()
	opts := appwrite.Options{
		Endpoint: srv.URL,
		Project:  appwritetest.ProjectDefault,
		APIKey:   secretKey,
		PageSize: 10,
		Now:      clock.Now,
		Sleep:    clock.Sleep,
	}
	if so.Project != "" {
		opts.Project = so.Project
	}
	if mod != nil {
		mod(&opts)
	}
	c, err := appwrite.New(opts)
	require.NoError(t, err)
	return &testBundle{srv: srv, client: c, clock: clock}
}

// ids returns the $id of each row.
func ids(t *testing.T, rows ...[]byte) []string {
	t.Helper()
	out := make([]string, len(rows))
	for i, r := range rows {
		id, _, _, err := appwrite.RowMeta(r)
		require.NoError(t, err)
		out[i] = id
	}
	return out
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
