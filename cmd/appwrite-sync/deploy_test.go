package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/internal/pgtest"
	"github.com/appwrite-sync/appwrite-sync/migrations"
)

// probingProxy is a load balancer as a Kubernetes Service behaves with the readiness probe
// shipped in deploy/: it probes each backend's /readyz every second, takes a backend out of
// rotation after two failed probes and back in after one good one, and forwards each request
// once, on a new connection (as Appwrite delivers), never retrying: a refused connection is a
// 502 that Appwrite would count as a failed, lost delivery.
type probingProxy struct {
	backends []*url.URL
	ready    []atomic.Bool
	fails    []int
	next     atomic.Uint64
	client   *http.Client
	srv      *httptest.Server
	stop     chan struct{}
	done     chan struct{}
}

const (
	probePeriod           = time.Second
	probeFailureThreshold = 2
)

func newProbingProxy(t *testing.T, backends ...string) *probingProxy {
	p := &probingProxy{ready: make([]atomic.Bool, len(backends)), fails: make([]int, len(backends)),
		client: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 15 * time.Second},
		stop:   make(chan struct{}), done: make(chan struct{})}
	for _, b := range backends {
		u, err := url.Parse(b)
		require.NoError(t, err)
		p.backends = append(p.backends, u)
	}
	p.srv = httptest.NewServer(http.HandlerFunc(p.forward))
	go p.probe()
	t.Cleanup(func() { close(p.stop); <-p.done; p.srv.Close() })
	return p
}

func (p *probingProxy) probe() {
	defer close(p.done)
	probe := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: probePeriod}
	for {
		for i, b := range p.backends {
			ok := false
			if resp, err := probe.Get(b.String() + "/readyz"); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				ok = resp.StatusCode == http.StatusOK
			}
			if ok {
				p.fails[i] = 0
				p.ready[i].Store(true)
			} else if p.fails[i]++; p.fails[i] >= probeFailureThreshold {
				p.ready[i].Store(false)
			}
		}
		select {
		case <-p.stop:
			return
		case <-time.After(probePeriod):
		}
	}
}

func (p *probingProxy) forward(w http.ResponseWriter, r *http.Request) {
	n := len(p.backends)
	first := p.next.Add(1)
	for k := 0; k < n; k++ {
		i := int((first + uint64(k)) % uint64(n))
		if !p.ready[i].Load() {
			continue
		}
		out := r.Clone(r.Context())
		out.RequestURI = ""
		out.URL.Scheme, out.URL.Host = p.backends[i].Scheme, p.backends[i].Host
		resp, err := p.client.Do(out)
		if err != nil {
			http.Error(w, "bad gateway: "+err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
		return
	}
	http.Error(w, "no ready backend", http.StatusServiceUnavailable)
}

func (p *probingProxy) readyCount(i int) bool { return p.ready[i].Load() }

// TestRollingRestartRefusesNothing runs two real serve processes behind the probing proxy with
// the shipped drain settings (server.drain_delay left at its default), sends a steady stream
// of webhooks and restarts each replica in turn with SIGTERM: every webhook must be answered
// 200 and every acknowledged row must reach the warehouse.
func TestRollingRestartRefusesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and restarts two replicas under load")
	}
	t.Parallel()
	bin := buildBinary(t)
	state := pgtest.NewMigratedDatabase(t, migrations.Up)
	ports, err := pgtest.FreePorts(2)
	require.NoError(t, err)
	dir := t.TempDir()
	var cfgPaths, bases []string
	for i, port := range ports {
		p := filepath.Join(dir, fmt.Sprintf("replica%d.yaml", i))
		writeBinaryConfig(t, p, fmt.Sprintf("127.0.0.1:%d", port), state, `delivery: {lease: 5s, poll_interval: 20ms, max_backoff: 200ms}
log: {level: info, format: json}`) // server.drain_delay: the default
		cfgPaths = append(cfgPaths, p)
		bases = append(bases, fmt.Sprintf("http://127.0.0.1:%d", port))
	}
	logs := make([]*lockedBuffer, len(ports))
	start := func(i int) *exec.Cmd {
		cmd := exec.Command(bin, "serve", "--config", cfgPaths[i])
		if logs[i] == nil {
			logs[i] = &lockedBuffer{}
		}
		cmd.Stdout, cmd.Stderr = logs[i], logs[i]
		require.NoError(t, cmd.Start())
		return cmd
	}
	cmds := []*exec.Cmd{start(0), start(1)}
	t.Cleanup(func() {
		for _, c := range cmds {
			_ = c.Process.Kill()
			_, _ = c.Process.Wait()
		}
	})
	proxy := newProbingProxy(t, bases...)
	waitReady := func(i int) {
		require.Eventually(t, func() bool { return proxy.readyCount(i) }, 30*time.Second, 50*time.Millisecond,
			"replica %d never became ready; its log:\n%s", i, logs[i])
	}
	waitReady(0)
	waitReady(1)

	// The stream: three senders, one webhook every 20 ms each (150/s), each a new version of
	// one of 200 rows.
	var (
		mu      sync.Mutex
		acked   = map[string]int64{}
		refused []string
		sent    atomic.Int64
		seq     atomic.Int64
	)
	t0 := time.Date(2026, 3, 26, 10, 0, 0, 0, time.UTC)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				n := seq.Add(1)
				id := fmt.Sprintf("r%d", n%200)
				e := mkEvent(id, "update", t0.Add(time.Duration(n)*time.Millisecond), fmt.Sprintf("v%d", n), n, "a")
				status, body := postBody(t, proxy.srv.URL, id, e.event)
				sent.Add(1)
				mu.Lock()
				if status == http.StatusOK {
					acked[id] = max(acked[id], n)
				} else {
					refused = append(refused, fmt.Sprintf("%s v%d at %s: %d %s", id, n, time.Now().Format("15:04:05.000"), status, body))
				}
				mu.Unlock()
			}
		}()
	}

	// flows lets the stream run through the proxy for n more webhooks (a third of a second at
	// 150/s, longer when the machine is busy).
	flows := func(n int64) {
		target := sent.Load() + n
		require.Eventually(t, func() bool { return sent.Load() >= target }, 30*time.Second, 5*time.Millisecond)
	}
	flows(50)
	var during [2]int64 // webhooks sent while replica i drained and restarted
	for i := range cmds {
		began, before := time.Now(), sent.Load()
		require.NoError(t, cmds[i].Process.Signal(syscall.SIGTERM))
		require.NoError(t, cmds[i].Wait(), "replica %d did not exit cleanly; its log:\n%s", i, logs[i])
		stopped := time.Since(began)
		require.GreaterOrEqual(t, stopped, 5*time.Second, "replica %d closed before server.drain_delay (default 5s) ran out", i)
		cmds[i] = start(i)
		waitReady(i)
		during[i] = sent.Load() - before
		flows(50)
	}
	close(stop)
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	require.Empty(t, refused, "webhooks refused during the rolling restart (of %d sent)", sent.Load())
	// Through both restarts, counted per restart: the total rate depends on the machine's load
	// (on 2 busy cores a post can take 100 ms), the stream flowing through each one does not.
	for i, n := range during {
		require.Greater(t, n, int64(10), "the stream ran through replica %d's restart", i)
	}
	for i := range cmds {
		require.Contains(t, logs[i].String(), "still taking webhooks until the drain delay ends", "replica %d drained", i)
	}
	waitDrained(t, state, 60*time.Second)
	got := warehouseRows(t, state)
	for id, views := range acked {
		g, ok := got[id]
		require.True(t, ok, "acknowledged row %s missing from the warehouse", id)
		require.Equal(t, views, g.Views, "row %s: the warehouse does not hold the newest acknowledged version", id)
	}
}

// TestDrainTakesWebhooksAndSecondSignalStops: after the first signal /readyz answers 503 at
// once while webhooks are still recorded; the second signal ends the drain delay at once.
func TestDrainTakesWebhooksAndSecondSignalStops(t *testing.T) {
	t.Parallel()
	state := pgtest.NewMigratedDatabase(t, migrations.Up)
	cfg := testConfig(t, state, state, "")
	cfg.Server.DrainDelay = time.Minute
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := migrations.Up(ctx, state)
	require.NoError(t, err)
	l := logrus.New()
	l.SetOutput(io.Discard)
	a, err := build(ctx, cfg, logrus.NewEntry(l))
	require.NoError(t, err)
	hard := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- a.run(withHardStop(ctx, hard)); a.close() }()
	base := "http://" + cfg.Listen
	require.Eventually(t, func() bool { return getStatus(base+"/readyz") == http.StatusOK }, 10*time.Second, 20*time.Millisecond)

	cancel() // the first signal
	require.Eventually(t, func() bool { return getStatus(base+"/readyz") == http.StatusServiceUnavailable }, 2*time.Second, 5*time.Millisecond)
	resp, err := http.Get(base + "/readyz")
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.JSONEq(t, `{"ready":false,"reason":"shutting down"}`, string(b))
	e := mkEvent("d1", "create", time.Date(2026, 3, 26, 10, 0, 0, 0, time.UTC), "during drain", 1, "a")
	require.Equal(t, http.StatusOK, post(t, base, "d1", e.event), "webhooks are still taken while draining")
	select {
	case err := <-done:
		t.Fatalf("serve stopped before the drain delay: %v", err)
	case <-time.After(200 * time.Millisecond):
	}

	began := time.Now()
	close(hard) // the second signal
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop at the second signal")
	}
	require.Less(t, time.Since(began), 5*time.Second)
	waitLedgerHas(t, state, "d1")
}

// TestStopSignals: the first SIGTERM cancels the context (drain), the second closes the hard
// stop.
func TestStopSignals(t *testing.T) {
	ctx, stop := stopSignals(context.Background())
	defer stop()
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGTERM))
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the first signal did not cancel the context")
	}
	select {
	case <-hardStop(ctx):
		t.Fatal("the first signal closed the hard stop")
	case <-time.After(50 * time.Millisecond):
	}
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGINT))
	select {
	case <-hardStop(ctx):
	case <-time.After(5 * time.Second):
		t.Fatal("the second signal did not close the hard stop")
	}
	require.Nil(t, hardStop(context.Background()), "no hard stop: a nil channel, never ready")
}

// lockedBuffer collects a child process's output while tests read it.
type lockedBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = append(l.b, p...)
	return len(p), nil
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}

// waitLedgerHas waits until the state store's ledger holds row id of main/posts.
func waitLedgerHas(t *testing.T, stateURL, id string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, stateURL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var n int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM appwrite_sync.ledger WHERE table_key = 'main/posts' AND row_id = $1`, id).Scan(&n))
	require.Equal(t, 1, n, "row %s is not in the ledger", id)
}

func getStatus(u string) int {
	resp, err := http.Get(u)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}
