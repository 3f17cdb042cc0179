package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector/ledger"
	"github.com/appwrite-sync/appwrite-sync/connector/sink/pgsink"
	"github.com/appwrite-sync/appwrite-sync/internal/pgtest"
	"github.com/appwrite-sync/appwrite-sync/internal/procstat"
)

func benchRows() int {
	if n, err := strconv.Atoi(os.Getenv("BENCH_ROWS")); err == nil && n > 0 {
		return n
	}
	return 1_000_000
}

// procKiB reads a VmXXX line of /proc/<pid>/status in KiB.
func procKiB(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, field+":") {
			f := strings.Fields(l)
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	return -1
}

// TestBenchBacklog: the real binary accepts BENCH_ROWS (default 1,000,000) webhook changes
// while the warehouse is down (RSS read from its /proc), then the warehouse comes back and the
// drain rate is measured until nothing is pending.
func TestBenchBacklog(t *testing.T) {
	if os.Getenv("APPWRITE_SYNC_BENCH") == "" {
		t.Skip("set APPWRITE_SYNC_BENCH=1 (make bench)")
	}
	rows := benchRows()
	dir := t.TempDir()
	bin := filepath.Join(dir, "appwrite-sync")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, string(out))
	whCluster, err := pgtest.StartCluster()
	require.NoError(t, err)
	defer whCluster.Stop()
	state := pgtest.NewDatabase(t)
	wh := pgtest.NewDatabaseOn(t, whCluster)
	cfg := testConfig(t, state, wh, "")
	cfgPath := filepath.Join(dir, "config.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(fmt.Sprintf(`
listen: %q
admin: {listen: %q, token: %q}
webhooks: [{url: %q, signing_keys: [%q]}]
state: {database_url: %q}
warehouse: {database_url: %q, schema: wh, batch_size: 5000}
delivery: {max_backoff: 1s}
log: {level: error, format: json}
server: {drain_delay: 0s}
tables:
  - database: main
    table: posts
    postgres:
      table: posts
      columns: {title: text, views: bigint, body: text, author_name: {from: author.name, type: text}}
`, cfg.Listen, cfg.Admin.Listen, testToken, webhookURL, testSecret, state, wh)), 0o600))
	cmd := exec.Command(bin, "serve", "--config", cfgPath)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()
	base := "http://" + cfg.Listen
	require.Eventually(t, func() bool {
		_, err := os.Stat("/proc/" + strconv.Itoa(cmd.Process.Pid))
		return err == nil && post(t, base, "warm", event{"create", kibRow("warm", 0)}) == 200
	}, 30*time.Second, 100*time.Millisecond)
	waitDrained(t, state, 30*time.Second)

	whCluster.StopServer()
	start := time.Now()
	sent := 0
	var accept loadResult
	for sent < rows { // chunks of load until BENCH_ROWS changes were acknowledged
		r := load(base, 64, 10*time.Second, 0, fmt.Sprintf("k%d-", sent), false)
		accept.n += r.n
		accept.errs += r.errs
		sent += int(r.n)
	}
	acceptDur := time.Since(start)
	rss, hwm := procKiB(cmd.Process.Pid, "VmRSS"), procKiB(cmd.Process.Pid, "VmHWM")

	ctx := context.Background()
	pool, err := ledger.OpenPool(ctx, state, 2)
	require.NoError(t, err)
	defer pool.Close()
	counts, _, err := ledger.NewAdmin(pool).SinkCounts(ctx, []string{pgsink.Name})
	require.NoError(t, err)
	pending := counts[pgsink.Name].Pending

	require.NoError(t, whCluster.Restart())
	t1 := time.Now()
	if p := os.Getenv("BENCH_CPUPROFILE"); p != "" { // profile the serve process while it drains
		go saveProfile("http://"+cfg.Admin.Listen, "/debug/pprof/profile?seconds=5", p)
	}
	waitDrained(t, state, 60*time.Minute)
	drain := time.Since(t1)
	if resp, err := http.Get("http://" + cfg.Admin.Listen + "/metrics"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "appwrite_sync_claim_latency_seconds_sum") || strings.HasPrefix(l, "appwrite_sync_apply_latency_seconds_sum") ||
				strings.HasPrefix(l, "appwrite_sync_sink_batch_rows_sum") || strings.HasPrefix(l, "appwrite_sync_sink_batch_rows_count") {
				t.Log(l)
			}
		}
	}
	report := fmt.Sprintf(`| backlog benchmark (warehouse down, 1 KiB rows) | value |
|---|---|
| changes accepted with the warehouse down | %d in %s (%.0f req/s, %d errors) |
| serve RSS after accepting / peak (VmHWM) | %.1f MiB / %.1f MiB (goal ≤ 150 MiB) |
| pending rows when the warehouse returned | %d |
| drain after recovery | %s → %.0f rows/s (goal ≥ 20,000 rows/s) |
`, accept.n, acceptDur.Round(time.Second), float64(accept.n)/acceptDur.Seconds(), accept.errs,
		float64(rss)/1024, float64(hwm)/1024, pending, drain.Round(time.Millisecond), float64(pending)/drain.Seconds())
	appendReport(t, report)
}

// cpuTicks sums user+system CPU (clock ticks) of this process and of the test cluster's
// Postgres processes (the postmaster and its children; every process named "postgres" when
// the tests run against a server pgtest did not start): where a benchmark's CPU goes on a
// machine the service shares with its database. Other clusters on a shared machine are not
// counted.
func cpuTicks() (self, postgres int64) {
	self, postgres, _ = cpuTicksOf(0)
	return self, postgres
}

// stealTicks is the machine's steal time in clock ticks (0 without /proc/stat): time this VM's
// virtual CPUs were ready to run but the hypervisor ran something else. On the shared VM of
// the notes it ranged from none to about a fifth of both cores between runs, and every latency
// and rate of a run with much of it is worse for reasons outside this program.
func stealTicks() int64 {
	c, _ := procstat.Read()
	return c.Steal
}

// stealShare is the steal ticks of a phase as a share of all the machine's CPU time in it.
func stealShare(ticks int64, wall time.Duration) float64 {
	if wall <= 0 {
		return 0
	}
	return float64(ticks) * 10 * float64(time.Millisecond) / (float64(wall) * float64(runtime.NumCPU())) // USER_HZ 100
}

// cpuTicksOf is cpuTicks plus the ticks of process pid (0: none).
func cpuTicksOf(pid int) (self, postgres, other int64) {
	read := func(path string) (name string, ppid, ticks int64) {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", 0, 0
		}
		s := string(b)
		open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || close < open {
			return "", 0, 0
		}
		f := strings.Fields(s[close+1:])
		if len(f) < 13 {
			return "", 0, 0
		}
		ppid, _ = strconv.ParseInt(f[1], 10, 64)
		u, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		return s[open+1 : close], ppid, u + st
	}
	_, _, self = read("/proc/self/stat")
	if pid > 0 {
		_, _, other = read(fmt.Sprintf("/proc/%d/stat", pid))
	}
	postmaster := int64(-1) // every postgres process
	if c := pgtest.Started(); c != nil {
		if p, err := c.PostmasterPID(); err == nil {
			postmaster = int64(p)
		}
	}
	ds, _ := os.ReadDir("/proc")
	for _, d := range ds {
		n, err := strconv.ParseInt(d.Name(), 10, 64)
		if err != nil {
			continue
		}
		name, ppid, t := read("/proc/" + d.Name() + "/stat")
		if name == "postgres" && (postmaster < 0 || n == postmaster || ppid == postmaster) {
			postgres += t
		}
	}
	return self, postgres, other
}
