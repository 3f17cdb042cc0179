package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/internal/pgtest"
)

// TestStatusCommand runs `appwrite-sync status` (the real binary) against a running instance
// whose Meilisearch is down (pending, lag, last error), whose warehouse dead-lettered a row,
// which quarantined a request and runs a backfill: the table and --json show each.
func TestStatusCommand(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	api := newAppwrite(t)
	api.Seed(postsKey, 3000, 100)
	api.SetLatency(2 * time.Second) // the job is still running while status is asked
	state := pgtest.NewDatabase(t)
	text := backfillConfigText(t, state, bfConfig{endpoint: api.URL, meili: "http://127.0.0.1:1"})
	path := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(path, []byte(text), 0o600))
	in := startInstance(t, parseText(t, text))

	t0 := time.Date(2026, 3, 26, 10, 0, 0, 0, time.UTC)
	require.Equal(t, 200, post(t, in.base, "g1", event{"create", rowBody("g1", t0, "ok", 1, "a")}))
	bad := []byte(strings.Replace(string(rowBody("bad", t0, "x", 1, "a")), `"views":1`, `"views":"abc"`, 1))
	require.Equal(t, 200, post(t, in.base, "bad", event{"create", bad}))
	require.Equal(t, 202, post(t, in.base, "q1", event{"create", []byte(`{"$id":"q1","$updatedAt":"not a date"}`)}))
	job := startJob(t, in.admin, "main/posts", "full")

	status := func(args ...string) string {
		cmd := exec.Command(bin, append([]string{"status", "--config", path}, args...)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		require.NoError(t, cmd.Run(), stderr.String())
		return stdout.String()
	}
	var v statusView
	require.Eventually(t, func() bool {
		v = statusView{}
		require.NoError(t, json.Unmarshal([]byte(status("--json")), &v))
		return v.Sinks["postgres"].DeadLetter == 1 && v.Sinks["meilisearch"].LastError != ""
	}, 20*time.Second, 100*time.Millisecond)
	meili := v.Sinks["meilisearch"]
	require.EqualValues(t, 2, meili.Pending, "g1 and bad wait for Meilisearch")
	require.Greater(t, meili.LagSeconds, 0.0)
	require.EqualValues(t, 1, v.Quarantined)
	require.Len(t, v.Jobs, 1)
	require.Equal(t, job, v.Jobs[0].ID)
	require.Contains(t, []string{"queued", "running"}, v.Jobs[0].State)

	table := status()
	lines := strings.Split(table, "\n")
	require.Regexp(t, `^SINK +STATE +PENDING +LAG +DEAD LETTERS +LAST ERROR$`, lines[0])
	require.Contains(t, table, "quarantined requests: 1 (inspect: GET /admin/quarantine")
	require.Regexp(t, `(?m)^meilisearch +\w+ +2 +[\d.]+m?s +0 +\S.*$`, table)
	require.Regexp(t, `(?m)^postgres +\w+ +0 +\S+ +1 +-$`, table)
	require.Regexp(t, `(?m)^JOB +TABLE +MODE +STATE +READ +TOTAL +RATE +ETA$`, table)
	require.Regexp(t, `(?m)^`+job+` +main/posts +full +(queued|running) +\d+ +`, table)

	// A wrong token is an error with the admin API's answer, exit 1.
	bad2 := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(bad2, []byte(strings.Replace(text, testToken, "wrong-token-0123456789", 1)), 0o600))
	cmd := exec.Command(bin, "status", "--config", bad2)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.Equal(t, 1, exitCode(t, cmd.Run()))
	require.Contains(t, stderr.String(), "admin API answered 401")
}
