package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/internal/appwritetest"
	"github.com/appwrite-sync/appwrite-sync/internal/pgtest"
	"github.com/appwrite-sync/appwrite-sync/migrations"
)

// built is the real binary, built once per test process by buildBinary (go build is 5-20 s
// on the 2-core machine) and removed by TestMain. It is built by `make build`, as shipped, so
// the tests of `make validate` and `make status` find it up to date instead of compiling
// the same variant (static, -trimpath) again.
var built struct {
	once sync.Once
	dir  string
	bin  string
	out  []byte
	err  error
}

// buildBinary returns the real binary, building it on the first call.
func buildBinary(t testing.TB) string {
	t.Helper()
	built.once.Do(func() {
		if built.dir, built.err = os.MkdirTemp("", "appwrite-sync-bin-"); built.err != nil {
			return
		}
		built.bin = filepath.Join(built.dir, "appwrite-sync")
		if _, err := exec.LookPath("make"); err != nil {
			built.out, built.err = exec.Command("go", "build", "-o", built.bin, ".").CombinedOutput()
			return
		}
		built.out, built.err = exec.Command("make", "-s", "-C", "../..", "build", "BIN="+built.bin, "STATIC=0").CombinedOutput()
	})
	require.NoError(t, built.err, string(built.out))
	return built.bin
}

// TestBackfillResumesAfterSIGKILL kills the real binary mid-backfill; the restarted process
// takes the job over once its lease lapses, resumes after the checkpoint the dead one saved
// (it does not read the table again from the start), and ends with the source's rows.
func TestBackfillResumesAfterSIGKILL(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds and kills the real binary")
	}
	const rows = 30000
	bin := buildBinary(t)
	api := newAppwrite(t)
	api.Seed(postsKey, rows, 300)
	api.SetLatency(40 * time.Millisecond) // 30 pages of 1000: the scan takes a few seconds
	state := pgtest.NewMigratedDatabase(t, migrations.Up)
	cfgPath := filepath.Join(t.TempDir(), "config.yaml")
	text := backfillConfigText(t, state, bfConfig{endpoint: api.URL})
	require.NoError(t, os.WriteFile(cfgPath, []byte(text), 0o600))
	adminBase := "http://" + parseText(t, text).Admin.Listen
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "serve", "--config", cfgPath)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		require.NoError(t, cmd.Start())
		require.Eventually(t, func() bool {
			code, _ := adminCall(t, adminBase, http.MethodGet, "/admin/backfill", "")
			return code == http.StatusOK
		}, 30*time.Second, 50*time.Millisecond)
		return cmd
	}
	cmd := start()
	id := startJob(t, adminBase, "main/posts", "full")
	require.Eventually(t, func() bool {
		j, ok := getJob(t, adminBase, id)
		return ok && j.RowsRead >= 8000
	}, 60*time.Second, 20*time.Millisecond)
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()

	// What the dead process left.
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, state)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var st, checkpoint string
	var read int64
	require.NoError(t, conn.QueryRow(ctx, `SELECT state, checkpoint, rows_read FROM appwrite_sync.backfill_jobs WHERE id = $1`, id).
		Scan(&st, &checkpoint, &read))
	require.Equal(t, "running", st, "a killed process cannot hand its job back")
	require.Less(t, read, int64(rows))
	before := len(api.Requests())
	api.SetLatency(0)

	cmd = start()
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()
	j := waitJob(t, adminBase, id, 2*time.Minute)
	require.Equal(t, "succeeded", j.State, j.Error)
	require.EqualValues(t, rows, j.RowsRead, "every row counted once: the restart read only what follows the checkpoint")
	// The lowest position any page request of the restarted process started after (a
	// parallel scan asks for several windows at once, and first for the highest $sequence).
	resumedAfter := ""
	for _, r := range api.Requests()[before:] {
		if r.Path != "/v1/tablesdb/main/tables/posts/rows" || strings.Contains(strings.Join(r.Queries, " "), `"orderDesc"`) {
			continue
		}
		after := sequenceAfter(r)
		a, _ := strconv.Atoi(after)
		if b, _ := strconv.Atoi(resumedAfter); resumedAfter == "" || a < b {
			resumedAfter = after
		}
	}
	require.Equal(t, checkpoint, resumedAfter, "the restarted process read on from the dead one's checkpoint")

	waitDrained(t, state, 2*time.Minute)
	got := whTitles(t, state)
	require.Len(t, got, rows)
	for _, raw := range api.Rows(postsKey) {
		var r struct {
			ID    string `json:"$id"`
			Title string `json:"title"`
		}
		require.NoError(t, json.Unmarshal(raw, &r))
		require.Equal(t, r.Title, got[r.ID], r.ID)
	}
}

// sequenceAfter returns the greaterThan $sequence value of a list request.
func sequenceAfter(r appwritetest.Request) string {
	for _, q := range r.Queries {
		var m struct {
			Method    string   `json:"method"`
			Attribute string   `json:"attribute"`
			Values    []string `json:"values"`
		}
		if json.Unmarshal([]byte(q), &m) == nil && m.Method == "greaterThan" && m.Attribute == "$sequence" && len(m.Values) == 1 {
			return m.Values[0]
		}
	}
	return ""
}
