package pgtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) { Main(m) }

func TestNewDatabaseIsFreshAndReal(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u := NewDatabase(t)
	conn, err := pgx.Connect(ctx, u)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var n int
	require.NoError(t, conn.QueryRow(ctx, "select count(*) from pg_tables where schemaname='public'").Scan(&n))
	require.Equal(t, 0, n)
	var v string
	require.NoError(t, conn.QueryRow(ctx, "show server_version").Scan(&v))
	require.NotEmpty(t, v)
}

// The template is migrated once; every test gets its own copy of it.
func TestNewMigratedDatabaseCopiesATemplateMigratedOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var calls atomic.Int32
	up := func(ctx context.Context, url string) (uint, error) {
		calls.Add(1)
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			return 0, err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, "create table t (id int primary key); insert into t values (1)")
		return 1, err
	}
	a, b := NewMigratedDatabase(t, up), NewMigratedDatabase(t, up)
	require.NotEqual(t, a, b)
	require.EqualValues(t, 1, calls.Load(), "migrated once, into the template")
	ca, err := pgx.Connect(ctx, a)
	require.NoError(t, err)
	defer ca.Close(ctx)
	_, err = ca.Exec(ctx, "insert into t values (2)")
	require.NoError(t, err)
	cb, err := pgx.Connect(ctx, b)
	require.NoError(t, err)
	defer cb.Close(ctx)
	var n int
	require.NoError(t, cb.QueryRow(ctx, "select count(*) from t").Scan(&n))
	require.Equal(t, 1, n, "each test has its own copy")
}

// Test clusters skip the flushes; the package's own cluster says so.
func TestTestClusterIsNotDurable(t *testing.T) {
	t.Parallel()
	if started == nil || started.Opts.Durable {
		t.Skip("the tests run against a server pgtest did not start, or a benchmark cluster")
	}
	d, err := Durability(context.Background(), started.URL)
	require.NoError(t, err)
	require.Equal(t, "fsync off, full_page_writes off, synchronous_commit on", d)
	require.Same(t, started, Started())
	pid, err := started.PostmasterPID()
	require.NoError(t, err)
	// The backend is read while its connection is open: a closed connection's backend exits,
	// and its /proc entry with it.
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, started.URL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var backend int
	require.NoError(t, conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&backend))
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", backend))
	require.NoError(t, err)
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	require.Equal(t, strconv.Itoa(pid), fields[1], "a backend's parent is the postmaster")
}

// A durable cluster runs with production durability, and FlushDelay makes every commit's
// flush that much slower: a run of single-row commits on one connection takes at least the
// delay per commit.
func TestDurableClusterWithFlushDelay(t *testing.T) {
	t.Parallel()
	const delay, commits = 4 * time.Millisecond, 25
	c, err := StartClusterWith(Options{Durable: true, FlushDelay: delay})
	require.NoError(t, err)
	defer c.Stop()
	ctx := context.Background()
	d, err := Durability(ctx, c.URL)
	require.NoError(t, err)
	require.Equal(t, "fsync on, full_page_writes on, synchronous_commit on, commit_delay 4000 µs with commit_siblings 0 (every commit's flush that much slower: a simulated slow disk)", d)
	conn, err := pgx.Connect(ctx, c.URL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "create table t (id int)")
	require.NoError(t, err)
	start := time.Now()
	for i := range commits {
		_, err := conn.Exec(ctx, "insert into t values ($1)", i)
		require.NoError(t, err)
	}
	require.GreaterOrEqual(t, time.Since(start), commits*delay, "each commit waits for the delayed flush")

	// The same cluster restarted keeps its options.
	c.StopServer()
	require.NoError(t, c.Restart())
	d, err = Durability(ctx, c.URL)
	require.NoError(t, err)
	require.Contains(t, d, "commit_delay 4000 µs")
}

func TestOptionsFromEnv(t *testing.T) {
	for _, tc := range []struct {
		bench, fsync, delay, pgss string
		want                      Options
		err                       bool
	}{
		{want: Options{}},
		{bench: "1", want: Options{Durable: true}},
		{bench: "1", fsync: "off", want: Options{}},
		{bench: "1", delay: "1.5ms", want: Options{Durable: true, FlushDelay: 1500 * time.Microsecond}},
		{bench: "1", fsync: "off", delay: "1ms", err: true}, // nothing to delay
		{delay: "1ms", err: true}, // test clusters are not durable
		{bench: "1", fsync: "maybe", err: true},
		{bench: "1", delay: "1s", err: true},
		{bench: "1", pgss: "1", want: Options{Durable: true, Statements: true}},
	} {
		t.Setenv(EnvStatements, tc.pgss)
		t.Setenv(EnvBench, tc.bench)
		t.Setenv(EnvFsync, tc.fsync)
		t.Setenv(EnvFlushDelay, tc.delay)
		o, err := OptionsFromEnv()
		if tc.err {
			require.Error(t, err, "%+v", tc)
			continue
		}
		require.NoError(t, err, "%+v", tc)
		require.Equal(t, tc.want, o, "%+v", tc)
	}
}

// A cluster whose test process died without Stop is stopped and removed by the next start;
// one whose owner lives, or that has no owner file, is left alone.
func TestOrphanedClusterIsReaped(t *testing.T) {
	t.Parallel()
	c, err := StartClusterWith(Options{})
	require.NoError(t, err)
	defer c.Stop()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.URL)
	require.NoError(t, err)
	require.NoError(t, conn.Close(ctx))

	// Its owner is alive (this process): kept.
	reapOrphans(os.TempDir())
	require.DirExists(t, c.Dir)
	// A directory without an owner file: kept.
	unowned, err := os.MkdirTemp("", clusterPrefix)
	require.NoError(t, err)
	defer os.RemoveAll(unowned)

	// Its owner is a process that has exited: stopped and removed.
	dead := exec.Command("true")
	require.NoError(t, dead.Run())
	require.NoError(t, os.WriteFile(filepath.Join(c.Dir, ownerFile), []byte(strconv.Itoa(dead.ProcessState.Pid())), 0o644))
	reapOrphans(os.TempDir())
	require.NoDirExists(t, c.Dir)
	require.DirExists(t, unowned)
	_, err = pgx.Connect(ctx, c.URL)
	require.Error(t, err, "the orphan's server was stopped")
}
