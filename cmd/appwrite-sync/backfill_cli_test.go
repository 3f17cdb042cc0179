package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/internal/pgtest"
	"github.com/appwrite-sync/appwrite-sync/migrations"
)

// TestBackfillCLIFollow runs `appwrite-sync backfill --follow` against a running instance:
// exit 0 when the job succeeds, 1 when it fails; stdout is not a terminal, so progress comes
// as log lines.
func TestBackfillCLIFollow(t *testing.T) {
	t.Parallel()
	api := newAppwrite(t)
	api.Seed(postsKey, 3000, 200)
	api.SetLatency(20 * time.Millisecond) // long enough for a few progress lines
	state := pgtest.NewMigratedDatabase(t, migrations.Up)
	text := backfillConfigText(t, state, bfConfig{endpoint: api.URL})
	path := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(path, []byte(text), 0o600))
	in := startInstance(t, parseText(t, text))

	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		code := Run(ctx, append([]string{"backfill", "--config", path}, args...), &out, &errb)
		return code, out.String(), errb.String()
	}

	code, out, errOut := run("--table", "main/posts", "--follow", "--poll", "20ms")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Regexp(t, `^backfill job bf-[0-9a-f]+ started \(main/posts, full\)$`, lines[0])
	require.Regexp(t, `^backfill bf-[0-9a-f]+ main/posts: state=succeeded read=3000 changed=3000 deleted=0 rate=\d+/s$`, lines[len(lines)-1])
	require.GreaterOrEqual(t, len(lines), 3, "at least one progress line before the end:\n%s", out)
	require.NotContains(t, out, "\r", "no progress bar when stdout is not a terminal")

	code, out, _ = run("--table", "main/posts", "--mode", "incremental", "--follow", "--poll", "20ms")
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "(main/posts, incremental)")

	// --allow-mass-delete reaches the job; it means nothing to an incremental one.
	code, out, errOut = run("--table", "main/posts", "--allow-mass-delete", "--follow", "--poll", "20ms")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	id := strings.Fields(out)[2]
	status, body := adminGet(t, in, "/admin/backfill/"+id)
	require.Equal(t, 200, status)
	require.Contains(t, body, `"allow_mass_delete":true`)
	code, _, errOut = run("--table", "main/posts", "--mode", "incremental", "--allow-mass-delete")
	require.Equal(t, exitBadInput, code)
	require.Contains(t, errOut, "--allow-mass-delete applies to --mode full only")

	// A table mapped but absent from Appwrite: the job fails, the command exits 1 with why.
	code, out, errOut = run("--table", "main/missing", "--follow", "--poll", "20ms")
	require.Equal(t, 1, code, out)
	require.Contains(t, out, "state=failed")
	require.Contains(t, errOut, "404 table_not_found")

	// Without --follow it returns once the job is queued.
	code, out, _ = run("--table", "main/posts")
	require.Equal(t, 0, code)
	require.Contains(t, out, "started (main/posts, full)")

	// A table that is not mapped: the admin API says 400 and the command exits 1.
	code, _, errOut = run("--table", "main/nope", "--follow")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "admin API answered 400: table main/nope is not mapped")
}
