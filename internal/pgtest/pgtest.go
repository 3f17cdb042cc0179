// Package pgtest gives tests a real PostgreSQL. When TEST_DATABASE_URL is set it is used;
// otherwise Main starts a throwaway cluster from the machine's PostgreSQL binaries (initdb,
// pg_ctl) on a free loopback port, runs the package's tests against it and removes it. Each
// test gets a fresh database (NewDatabase), so tests run in parallel without sharing state.
// Tests that need the state store's schema use NewMigratedDatabase: the migrations run once
// per test process into a template, and each test gets a copy of it (CREATE DATABASE …
// TEMPLATE) instead of running every migration again.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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
	c, err := StartCluster()
	if err != nil {
		fmt.Fprintln(os.Stderr, "pgtest:", err)
		return 1
	}
	os.Setenv(EnvURL, c.URL)
	code := m.Run()
	c.Stop()
	return code
}

// Cluster is a throwaway PostgreSQL server.
type Cluster struct {
	URL  string
	Dir  string
	Port int
	bin  string
	asPG bool
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

// StartCluster initialises and starts a cluster in a temporary directory. initdb refuses to
// run as root, so as root the cluster belongs to the "postgres" user.
func StartCluster() (*Cluster, error) {
	dir, err := os.MkdirTemp("", "appwrite-sync-pg-")
	if err != nil {
		return nil, err
	}
	c, err := StartClusterIn(dir)
	if err != nil {
		os.RemoveAll(dir)
	}
	return c, err
}

// StartClusterIn initialises (if needed) and starts a cluster whose data lives in dir/data.
func StartClusterIn(dir string) (*Cluster, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: dir, Port: port, bin: bin, asPG: os.Geteuid() == 0}
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
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -c unix_socket_directories=%s -c fsync=off -c full_page_writes=off -c max_connections=300 -c shared_buffers=256MB", port, dir)
	if out, err := c.run("pg_ctl", "-D", data, "-o", opts, "-l", filepath.Join(dir, "log"), "-w", "-t", "60", "start"); err != nil {
		return nil, fmt.Errorf("pg_ctl start: %v: %s", err, out)
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

// Restart starts a stopped server again on the same port.
func (c *Cluster) Restart() error {
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -c unix_socket_directories=%s -c fsync=off -c max_connections=300", c.Port, c.Dir)
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
