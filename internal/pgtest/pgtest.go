// Package pgtest gives tests a real PostgreSQL. When TEST_DATABASE_URL is set it is used;
// otherwise Main starts a throwaway cluster from the machine's PostgreSQL binaries (initdb,
// pg_ctl) on a free loopback port, runs the package's tests against it and removes it. Each
// test gets a fresh database (NewDatabase), so tests run in parallel without sharing state.
// Tests that need the state store's schema use NewMigratedDatabase: the migrations run once
// per test process into a template, and each test gets a copy of it (CREATE DATABASE …
// TEMPLATE) instead of running every migration again.
//
// A throwaway cluster runs with Options: test clusters skip the disk flushes (fsync and
// full_page_writes off), benchmark clusters (APPWRITE_SYNC_BENCH set) keep PostgreSQL's
// production durability, so that a benchmark measures what a commit costs on a real disk. See
// OptionsFromEnv.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL names the variable holding an existing server's URL.
const EnvURL = "TEST_DATABASE_URL"

// Main runs a test package against TEST_DATABASE_URL or a throwaway cluster, and exits.
func Main(m *testing.M) { os.Exit(Run(m)) }

// Run is Main for a TestMain with work of its own to do after the tests: it returns the exit
// code instead of exiting.
func Run(m *testing.M) int {
	if os.Getenv(EnvURL) != "" {
		code := m.Run()
		dropTemplate() // a shared server keeps no template; a throwaway cluster goes whole
		return code
	}
	opts, err := OptionsFromEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, "pgtest:", err)
		return 1
	}
	c, err := StartClusterWith(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pgtest:", err)
		return 1
	}
	started = c
	os.Setenv(EnvURL, c.URL)
	code := m.Run()
	c.Stop()
	return code
}

// started is the cluster Run started, if it did.
var started *Cluster

// Started returns the cluster Run started for this process, or nil (TEST_DATABASE_URL was set).
func Started() *Cluster { return started }

// PostmasterPID returns the pid of the cluster's server process, the parent of every backend.
func (c *Cluster) PostmasterPID() (int, error) {
	b, err := os.ReadFile(filepath.Join(c.Dir, "data", "postmaster.pid"))
	if err != nil {
		return 0, fmt.Errorf("reading postmaster.pid: %w", err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil {
		return 0, fmt.Errorf("parsing postmaster.pid: %w", err)
	}
	return pid, nil
}

// Cluster is a throwaway PostgreSQL server.
type Cluster struct {
	URL  string
	Dir  string
	Port int
	Opts Options
	bin  string
	asPG bool
}

// Environment variables of OptionsFromEnv.
const (
	// EnvBench set (to anything) asks for a benchmark cluster: durable.
	EnvBench = "APPWRITE_SYNC_BENCH"
	// EnvFsync "off" makes a benchmark cluster not durable, for a run labelled as such.
	EnvFsync = "BENCH_FSYNC"
	// EnvFlushDelay (a Go duration, e.g. "1.5ms") sets FlushDelay: the slow-disk mode.
	EnvFlushDelay = "BENCH_FLUSH_DELAY"
	// EnvStatements set (to anything) sets Statements.
	EnvStatements = "BENCH_PGSS"
)

// Options are the settings a throwaway cluster runs with.
type Options struct {
	// Durable runs the cluster as production does: fsync, full_page_writes and
	// synchronous_commit on (PostgreSQL's defaults), so every commit waits for its WAL flush
	// and the first change to a page after a checkpoint writes the whole page to the WAL.
	// Off (tests), commits cost no flush and a crash of the machine may lose them.
	Durable bool
	// FlushDelay, on a durable cluster, makes every WAL flush at commit take this much longer:
	// a slower disk (a cloud volume's flush takes 0.5–2 ms, a local SSD's about 0.1 ms). It is
	// commit_delay with commit_siblings = 0: the backend that flushes sleeps while holding the
	// WAL write lock, before its fsync, so commits arriving meanwhile queue behind it and share
	// the next flush, as they do behind a slow fsync. What it does not simulate: the WAL
	// writer's background flushes, checkpoints' data file writes and a saturated disk's
	// bandwidth stay as fast as this disk, and the sleep overshoots by the kernel's timer
	// slack (about 0.05–0.1 ms). Rounded to microseconds, at most 100 ms.
	FlushDelay time.Duration
	// Statements loads pg_stat_statements (a database still needs CREATE EXTENSION), so a
	// benchmark can say which statements take Postgres's time.
	Statements bool
}

// settings are the server options (-c) of o.
func (o Options) settings() string {
	s := "-c fsync=off -c full_page_writes=off"
	if o.Durable {
		s = "-c fsync=on -c full_page_writes=on -c synchronous_commit=on"
		if o.FlushDelay > 0 {
			s += fmt.Sprintf(" -c commit_delay=%d -c commit_siblings=0", o.FlushDelay.Microseconds())
		}
	}
	if o.Statements {
		s += " -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all"
	}
	return s
}

// OptionsFromEnv are the options of this process's throwaway clusters: not durable for tests;
// durable when EnvBench is set, unless EnvFsync is "off"; FlushDelay from EnvFlushDelay;
// Statements when EnvStatements is set.
func OptionsFromEnv() (Options, error) {
	var o Options
	if os.Getenv(EnvBench) != "" {
		switch v := os.Getenv(EnvFsync); v {
		case "", "on":
			o.Durable = true
		case "off":
		default:
			return o, fmt.Errorf("%s=%q: want on or off", EnvFsync, v)
		}
	}
	if v := os.Getenv(EnvFlushDelay); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d > 100*time.Millisecond {
			return o, fmt.Errorf("%s=%q: want a duration from 0 to 100ms", EnvFlushDelay, v)
		}
		if d > 0 && !o.Durable {
			return o, fmt.Errorf("%s needs a durable cluster (%s set, %s not off): without fsync no commit flushes", EnvFlushDelay, EnvBench, EnvFsync)
		}
		o.FlushDelay = d
	}
	o.Statements = os.Getenv(EnvStatements) != ""
	return o, nil
}

// Durability describes the durability settings of the server at url, as benchmark reports
// label their numbers, e.g. "fsync on, full_page_writes on, synchronous_commit on".
func Durability(ctx context.Context, url string) (string, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return "", fmt.Errorf("connecting: %w", err)
	}
	defer conn.Close(ctx)
	var fsync, fpw, sc string
	var delay, siblings int
	if err := conn.QueryRow(ctx, `SELECT current_setting('fsync'), current_setting('full_page_writes'), current_setting('synchronous_commit'),
		current_setting('commit_delay')::int, current_setting('commit_siblings')::int`).Scan(&fsync, &fpw, &sc, &delay, &siblings); err != nil {
		return "", fmt.Errorf("reading the settings: %w", err)
	}
	s := fmt.Sprintf("fsync %s, full_page_writes %s, synchronous_commit %s", fsync, fpw, sc)
	if delay > 0 && fsync == "on" {
		s += fmt.Sprintf(", commit_delay %d µs with commit_siblings %d", delay, siblings)
		if siblings == 0 {
			s += " (every commit's flush that much slower: a simulated slow disk)"
		}
	}
	return s, nil
}

// BinDir finds the newest /usr/lib/postgresql/*/bin, or the directory of initdb on PATH.
func BinDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgVer(dirs[i]) < pgVer(dirs[j]) })
	if len(dirs) > 0 {
		return dirs[len(dirs)-1], nil
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", fmt.Errorf("no PostgreSQL server binaries found (install the postgresql package, or set %s)", EnvURL)
}

func pgVer(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

// FreePort asks the kernel for a free loopback TCP port.
func FreePort() (int, error) {
	ps, err := FreePorts(1)
	if err != nil {
		return 0, err
	}
	return ps[0], nil
}

// FreePorts asks the kernel for n free loopback TCP ports, all different: each stays bound
// until all are chosen. (Two FreePort calls in a row can return the same port, which once
// gave a test instance the same listen and admin.listen.)
func FreePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// StartCluster initialises and starts a cluster in a temporary directory, with the options of
// OptionsFromEnv. initdb refuses to run as root, so as root the cluster belongs to the
// "postgres" user.
func StartCluster() (*Cluster, error) {
	opts, err := OptionsFromEnv()
	if err != nil {
		return nil, err
	}
	return StartClusterWith(opts)
}

// StartClusterWith is StartCluster with the given options.
func StartClusterWith(opts Options) (*Cluster, error) {
	reapOrphans(os.TempDir())
	dir, err := os.MkdirTemp("", clusterPrefix)
	if err != nil {
		return nil, err
	}
	// The owner file lets a later run reap this cluster if this process dies without Stop
	// (a test binary killed by -timeout or SIGKILL leaves its server running otherwise).
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	c, err := startClusterIn(dir, opts)
	if err != nil {
		os.RemoveAll(dir)
	}
	return c, err
}

// StartClusterIn initialises (if needed) and starts a cluster whose data lives in dir/data,
// with the options of OptionsFromEnv.
func StartClusterIn(dir string) (*Cluster, error) {
	opts, err := OptionsFromEnv()
	if err != nil {
		return nil, err
	}
	return startClusterIn(dir, opts)
}

func startClusterIn(dir string, opts Options) (*Cluster, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: dir, Port: port, Opts: opts, bin: bin, asPG: os.Geteuid() == 0}
	if c.asPG {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root needs the postgres user (from the postgresql package): %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
		_ = os.Chmod(dir, 0o755)
	}
	data := filepath.Join(dir, "data")
	if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); err != nil {
		if out, err := c.run("initdb", "-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"); err != nil {
			return nil, fmt.Errorf("initdb: %v: %s", err, out)
		}
	}
	if err := c.start(); err != nil {
		return nil, err
	}
	c.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	return c, nil
}

func (c *Cluster) run(name string, args ...string) ([]byte, error) {
	path := filepath.Join(c.bin, name)
	var cmd *exec.Cmd
	if c.asPG {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	cmd.Dir = c.Dir
	return cmd.CombinedOutput()
}

// Stop stops the server (immediate mode) and removes its directory.
func (c *Cluster) Stop() {
	c.StopServer()
	os.RemoveAll(c.Dir)
}

// StopServer stops the server but keeps its data (for outage tests: Restart brings it back).
func (c *Cluster) StopServer() {
	_, _ = c.run("pg_ctl", "-D", filepath.Join(c.Dir, "data"), "-m", "immediate", "-w", "stop")
}

// Restart starts a stopped server again on the same port, with the same options.
func (c *Cluster) Restart() error { return c.start() }

// start starts the server of c.Dir with c's port and options.
func (c *Cluster) start() error {
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -c unix_socket_directories=%s %s -c max_connections=300 -c shared_buffers=256MB", c.Port, c.Dir, c.Opts.settings())
	out, err := c.run("pg_ctl", "-D", filepath.Join(c.Dir, "data"), "-o", opts, "-l", filepath.Join(c.Dir, "log"), "-w", "-t", "60", "start")
	if err != nil {
		return fmt.Errorf("pg_ctl start: %v: %s", err, out)
	}
	return nil
}

// NewDatabase creates a fresh database on the test server and returns its URL; it is dropped
// when the test ends.
func NewDatabase(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvURL)
	if base == "" {
		t.Fatalf("%s is not set: call pgtest.Main from TestMain", EnvURL)
	}
	return newDatabase(t, base)
}

func newDatabase(t testing.TB, base string) string { return createDatabase(t, base, "") }

func randomSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// createDatabase creates a database, a copy of template when one is named, and drops it when
// the test ends.
func createDatabase(t testing.TB, base, template string) string {
	name := "t_" + randomSuffix()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connecting to test server: %v", err)
	}
	defer conn.Close(ctx)
	stmt := "CREATE DATABASE " + name
	if template != "" {
		stmt += " TEMPLATE " + template
	}
	if _, err := conn.Exec(ctx, stmt); err != nil {
		t.Fatalf("creating test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			return
		}
		defer conn.Close(ctx)
		_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	return WithDatabase(base, name)
}

// migrated is the template NewMigratedDatabase copies: created and migrated once per test
// process, on the first call. Its name is random so that test processes sharing one server
// (go test runs packages in parallel) do not share a template.
var migrated struct {
	once sync.Once
	base string // the server it lives on
	name string
	err  error
}

// NewMigratedDatabase returns the URL of a fresh database holding the migrated schema, dropped
// when the test ends. up migrates a database (migrations.Up: pgtest cannot import it, since the
// migrations package's own tests use pgtest); it runs once per test process, into a template
// every later call copies, so pass the same function every time.
func NewMigratedDatabase(t testing.TB, up func(ctx context.Context, url string) (uint, error)) string {
	t.Helper()
	base := os.Getenv(EnvURL)
	if base == "" {
		t.Fatalf("%s is not set: call pgtest.Main from TestMain", EnvURL)
	}
	migrated.once.Do(func() {
		migrated.base = base
		migrated.name = "tpl_" + randomSuffix()
		migrated.err = createTemplate(base, migrated.name, up)
	})
	if migrated.err != nil {
		t.Fatalf("preparing the migrated template: %v", migrated.err)
	}
	return createDatabase(t, base, migrated.name)
}

// createTemplate creates name and migrates it. CREATE DATABASE … TEMPLATE refuses a template
// anyone is connected to, so every connection up opened must be closed when it returns
// (migrations.Up closes its own).
func createTemplate(base, name string, up func(context.Context, string) (uint, error)) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return fmt.Errorf("connecting to test server: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return fmt.Errorf("creating template database: %w", err)
	}
	if _, err := up(ctx, WithDatabase(base, name)); err != nil {
		return fmt.Errorf("migrating template database: %w", err)
	}
	return nil
}

// dropTemplate drops the process's template, if one was made (or half made).
func dropTemplate() {
	if migrated.name == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, migrated.base)
	if err != nil {
		return
	}
	defer conn.Close(ctx)
	_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+migrated.name+" WITH (FORCE)")
}

// NewDatabaseOn creates a fresh database on a specific cluster (e.g. one a test stops).
func NewDatabaseOn(t testing.TB, c *Cluster) string { return newDatabase(t, c.URL) }

// WithDatabase returns url with its database name replaced.
func WithDatabase(raw, name string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	u.Path = "/" + strings.TrimPrefix(name, "/")
	return u.String()
}

// clusterPrefix starts the name of every throwaway cluster's directory (in os.TempDir()).
const clusterPrefix = "appwrite-sync-pg-"

// ownerFile, in a throwaway cluster's directory, holds the pid of the process that started it.
const ownerFile = "owner.pid"

// reapOrphans stops and removes the throwaway clusters under tmp whose starting process is
// gone: a test binary killed before its deferred Stop leaves a postmaster running (pg_ctl
// detaches it) and its directory behind, and a developer's machine collects them. A
// directory without an owner file (an older run, or one being created this instant) or whose
// owner is alive is left alone; a reused pid only makes a cluster wait for a later run.
func reapOrphans(tmp string) {
	dirs, _ := filepath.Glob(filepath.Join(tmp, clusterPrefix+"*"))
	bin, binErr := BinDir()
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 || processAlive(pid) {
			continue
		}
		if binErr == nil {
			c := &Cluster{Dir: dir, bin: bin, asPG: os.Geteuid() == 0}
			c.StopServer() // fails harmlessly when the server is not running
		}
		os.RemoveAll(dir)
	}
}

// processAlive reports whether a process with this pid exists (signal 0 checks without
// sending; EPERM means it exists under another user).
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
