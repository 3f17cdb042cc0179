package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDemoShowsWhatEachWebhookDid runs the demo against the real binary: each webhook line
// shows its $updatedAt, title and result (the stale and the duplicate are visible as such), the
// final rows come with their reason, and the backfill changes only the seeded rows.
func TestDemoShowsWhatEachWebhookDid(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and the real binary")
	}
	bin := filepath.Join(t.TempDir(), "appwrite-sync")
	// As `make demo` builds it, in the same variant (STATIC=0) as cmd/appwrite-sync's tests, so
	// the two packages share the compiled dependencies in the build cache.
	build := exec.Command("make", "-s", "-C", "../..", "build", "BIN="+bin, "STATIC=0")
	if _, err := exec.LookPath("make"); err != nil {
		build = exec.Command("go", "build", "-o", bin, "../appwrite-sync")
	}
	out, err := build.CombinedOutput()
	require.NoError(t, err, string(out))
	var buf bytes.Buffer
	require.NoError(t, run(&buf, bin, 50), buf.String())
	got := buf.String()
	for _, re := range []string{
		`update welcome +\d\d:\d\d:\d\d\.\d{3} +"Welcome \(stale, sent late\)" +→ 200 stale`,
		`update welcome +\d\d:\d\d:\d\d\.\d{3} +"Welcome, edited" +→ 200 duplicate`,
		`delete draft .*→ 200 new`,
		`welcome +"Welcome, edited": the version with the greatest \$updatedAt`,
		`draft +deleted: `,
		`state=succeeded read=52 changed=50 deleted=0`,
	} {
		require.Regexp(t, regexp.MustCompile(re), got)
	}
}
