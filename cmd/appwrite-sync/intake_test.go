package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/internal/pgtest"
	"github.com/appwrite-sync/appwrite-sync/migrations"
)

// rssKiB reads a process's resident set (VmRSS) and its peak (VmHWM) from /proc.
func rssKiB(t *testing.T, pid int) (rss, peak int64) {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if k == "VmRSS" {
			rss = n
		} else {
			peak = n
		}
	}
	return rss, peak
}

// TestFloodFromStrangersKeepsAppwriteServed floods the real binary's listener from 30 other
// loopback addresses: 300 connections that announce 5 MiB bodies (the default
// limits.max_body_bytes) and trickle them, reconnecting when answered. Meanwhile a source that
// delivered a signed webhook before the flood sends one every 100 ms. The service's peak RSS
// must stay under 200 MiB (the shipped sidecar limit is 256 Mi) and every signed webhook must
// be answered 200 within a second.
func TestFloodFromStrangersKeepsAppwriteServed(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and floods it for 15 s")
	}
	t.Parallel()
	bin := buildBinary(t)
	state := pgtest.NewMigratedDatabase(t, migrations.Up)
	port, err := pgtest.FreePort()
	require.NoError(t, err)
	cfgPath := filepath.Join(t.TempDir(), "config.yaml")
	writeBinaryConfig(t, cfgPath, fmt.Sprintf("127.0.0.1:%d", port), state, `server: {drain_delay: 0s}
log: {level: error, format: json}`)
	var logs lockedBuffer
	cmd := exec.Command(bin, "serve", "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	require.Eventually(t, func() bool { return getStatus(base+"/readyz") == http.StatusOK }, 30*time.Second, 20*time.Millisecond, "%s", &logs)

	t0 := time.Date(2026, 3, 26, 10, 0, 0, 0, time.UTC)
	var n atomic.Int64
	appwrite := func() (int, time.Duration) {
		i := n.Add(1)
		id := fmt.Sprintf("a%d", i)
		e := mkEvent(id, "create", t0.Add(time.Duration(i)*time.Millisecond), "signed", i, "a")
		start := time.Now()
		status := post(t, base, id, e.event)
		return status, time.Since(start)
	}
	status, _ := appwrite()
	require.Equal(t, http.StatusOK, status, "the signed source delivers before the flood")

	const (
		addrs       = 30
		connsPer    = 10
		announced   = 5 << 20
		chunk       = 16 << 10
		chunkEvery  = 50 * time.Millisecond
		floodFor    = 15 * time.Second
		peakLimitKB = 200 << 10
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var strangerAnswers atomic.Int64
	junk := bytes.Repeat([]byte("z"), chunk)
	for a := 0; a < addrs; a++ {
		local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+a))}
		for c := 0; c < connsPer; c++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d := net.Dialer{LocalAddr: local, Timeout: time.Second}
				for {
					select {
					case <-stop:
						return
					default:
					}
					conn, err := d.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
					if err != nil {
						time.Sleep(100 * time.Millisecond)
						continue
					}
					answered := make(chan struct{})
					go func() {
						defer close(answered)
						resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
						if err == nil {
							resp.Body.Close()
							strangerAnswers.Add(1)
						}
					}()
					fmt.Fprintf(conn, "POST /webhooks/appwrite HTTP/1.1\r\nHost: sync.example.com\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", announced)
				trickle:
					for sent := 0; sent < announced; sent += chunk {
						_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
						if _, err := conn.Write(junk); err != nil && !isTimeout(err) {
							break
						}
						select {
						case <-stop:
							break trickle
						case <-answered:
							break trickle
						case <-time.After(chunkEvery):
						}
					}
					conn.Close()
					<-answered
				}
			}()
		}
	}

	var (
		peakRSS  int64
		slowest  time.Duration
		failures []string
		sentOK   int
	)
	deadline := time.Now().Add(floodFor)
	for time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		status, took := appwrite()
		if status != http.StatusOK || took > time.Second {
			failures = append(failures, fmt.Sprintf("%d after %s", status, took))
		} else {
			sentOK++
		}
		slowest = max(slowest, took)
		if rss, _ := rssKiB(t, cmd.Process.Pid); rss > peakRSS {
			peakRSS = rss
		}
	}
	_, hwm := rssKiB(t, cmd.Process.Pid)
	close(stop)
	wg.Wait()
	t.Logf("signed webhooks: %d answered 200 within 1 s, slowest %s; strangers answered: %d; RSS peak sampled %d MiB, VmHWM %d MiB",
		sentOK, slowest, strangerAnswers.Load(), peakRSS>>10, hwm>>10)
	require.Empty(t, failures, "signed webhooks refused or slow during the flood")
	require.Greater(t, sentOK, 50)
	require.Less(t, max(peakRSS, hwm), int64(peakLimitKB), "RSS must stay under 200 MiB during the flood")
	waitDrained(t, state, 30*time.Second)
	require.Len(t, warehouseRows(t, state), int(n.Load()), "every acknowledged signed row reached the warehouse")
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
