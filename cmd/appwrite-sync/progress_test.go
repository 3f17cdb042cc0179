package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/internal/pgtest"
)

// ttyBuffer is a writer that claims to be a terminal.
type ttyBuffer struct{ bytes.Buffer }

func (*ttyBuffer) IsTerminal() bool { return true }

// TestBackfillFollowDrawsAProgressBarOnATerminal: on a terminal, `backfill --follow` shows a
// percentage, rows/s, an ETA and the rows created or updated, against Appwrite's exact count
// below its cap and against an estimate, labelled so, above it.
func TestBackfillFollowDrawsAProgressBarOnATerminal(t *testing.T) {
	t.Parallel()
	api := newAppwrite(t)
	api.Seed(postsKey, 3000, 100)
	api.SetLatency(200 * time.Millisecond) // pages of 1000 rows: a few polls per page
	state := pgtest.NewDatabase(t)
	text := backfillConfigText(t, state, bfConfig{endpoint: api.URL})
	path := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(path, []byte(text), 0o600))
	startInstance(t, parseText(t, text))

	follow := func() string {
		var out ttyBuffer
		var errb bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		code := Run(ctx, []string{"backfill", "--config", path, "--table", "main/posts", "--follow", "--poll", "50ms"}, &out, &errb)
		require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out.String(), errb.String())
		return out.String()
	}
	out := follow()
	require.Contains(t, out, "\r", "a bar redrawn in place")
	require.Regexp(t, regexp.MustCompile(`main/posts \d+ created/updated +\d+% \|`), out)
	require.Regexp(t, regexp.MustCompile(`\(\d+/3000, \d+ rows/(s|min|hr)\) \[\w+:\w+\]`), out, "count of the exact total, rate and elapsed:ETA")
	require.NotContains(t, out, "estimated")

	// Over Appwrite's counting cap: the total is an estimate from the $sequence range.
	api.Seed(postsKey, 3000, 100)
	out = follow()
	require.Regexp(t, regexp.MustCompile(`main/posts \(~6000 rows, estimated\) \d+ created/updated +\d+% \|`), out)
	require.Regexp(t, regexp.MustCompile(`\(\d+/6000, \d+ rows/(s|min|hr)\)`), out)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Regexp(t, `backfill bf-[0-9a-f]+ main/posts: succeeded, read=6000 changed=3000 deleted=0$`, lines[len(lines)-1])
}
