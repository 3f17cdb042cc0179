package main

import (
	"bytes"
	"encoding/json"
	"math"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector/config"
)

// fakeSetter records the calls applyMemoryLimit makes instead of changing the runtime's limit.
type fakeSetter struct {
	current int64
	calls   []int64
}

func (f *fakeSetter) set(v int64) int64 {
	f.calls = append(f.calls, v)
	prev := f.current
	if v >= 0 {
		f.current = v
	}
	return prev
}

func noEnv(string) string { return "" }

func TestApplyMemoryLimitSetsConfiguredLimit(t *testing.T) {
	f := &fakeSetter{current: math.MaxInt64}
	r := applyMemoryLimit(config.MemoryLimitDefault, noEnv, f.set)
	require.Equal(t, memoryLimitResult{Limit: 128 << 20}, r)
	require.Equal(t, []int64{128 << 20}, f.calls)

	f = &fakeSetter{current: math.MaxInt64}
	r = applyMemoryLimit(1<<30, noEnv, f.set)
	require.Equal(t, memoryLimitResult{Limit: 1 << 30}, r)
	require.Equal(t, []int64{1 << 30}, f.calls)
}

func TestApplyMemoryLimitOffMeansNoLimit(t *testing.T) {
	f := &fakeSetter{current: 160 << 20}
	r := applyMemoryLimit(0, noEnv, f.set)
	require.Equal(t, memoryLimitResult{Limit: math.MaxInt64}, r)
	require.Equal(t, []int64{math.MaxInt64}, f.calls, "off is the runtime default, never SetMemoryLimit(0)")
}

func TestApplyMemoryLimitGOMEMLIMITWins(t *testing.T) {
	f := &fakeSetter{current: 300 << 20} // what the runtime read from GOMEMLIMIT at start
	getenv := func(k string) string {
		if k == "GOMEMLIMIT" {
			return "300MiB"
		}
		return ""
	}
	r := applyMemoryLimit(config.MemoryLimitDefault, getenv, f.set)
	require.Equal(t, memoryLimitResult{GOMEMLIMIT: "300MiB", Limit: 300 << 20}, r)
	require.Equal(t, []int64{-1}, f.calls, "the limit is only read, never set")
	require.Equal(t, int64(300<<20), f.current)
}

func TestApplyMemoryLimitRuntime(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })

	r := applyMemoryLimit(256<<20, noEnv, debug.SetMemoryLimit)
	require.Equal(t, int64(256<<20), r.Limit)
	require.Equal(t, int64(256<<20), debug.SetMemoryLimit(-1))

	applyMemoryLimit(0, noEnv, debug.SetMemoryLimit)
	require.Equal(t, int64(math.MaxInt64), debug.SetMemoryLimit(-1))
}

func TestMemoryLimitLogged(t *testing.T) {
	logged := func(r memoryLimitResult) map[string]any {
		var buf bytes.Buffer
		l := logrus.New()
		l.SetOutput(&buf)
		l.SetFormatter(&logrus.JSONFormatter{})
		logMemoryLimit(logrus.NewEntry(l), r)
		lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
		require.Len(t, lines, 1)
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(lines[0]), &m))
		require.Equal(t, "info", m["level"])
		return m
	}

	m := logged(memoryLimitResult{Limit: 160 << 20})
	require.Equal(t, "soft memory limit set", m["msg"])
	require.Equal(t, "160MiB", m["memory_limit"])
	require.EqualValues(t, 160<<20, m["bytes"])

	m = logged(memoryLimitResult{Limit: math.MaxInt64})
	require.Equal(t, "soft memory limit off", m["msg"])
	require.Equal(t, "off", m["memory_limit"])

	m = logged(memoryLimitResult{GOMEMLIMIT: "300MiB", Limit: 300 << 20})
	require.Contains(t, m["msg"], "GOMEMLIMIT is set and in effect")
	require.Equal(t, "300MiB", m["GOMEMLIMIT"])
	require.Equal(t, "300MiB", m["limit"])
}

func TestMemoryLimitInExampleConfig(t *testing.T) {
	env := map[string]string{"APPWRITE_SYNC_ADMIN_TOKEN": "0123456789abcdef-admin", "APPWRITE_WEBHOOK_SECRET": "whsec",
		"DATABASE_URL": "postgres://u:p@localhost:5432/db"}
	cfg, err := config.LoadWith("../../config.yaml", func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	require.NoError(t, err)
	require.Equal(t, int64(config.MemoryLimitDefault), cfg.MemoryLimit)
}

func TestApplyGCPercentUnderALimitOnly(t *testing.T) {
	var calls []int
	set := func(p int) int { calls = append(calls, p); return 100 }
	r := applyGCPercent(memoryLimitResult{Limit: config.MemoryLimitDefault}, noEnv, set)
	require.Equal(t, gcPercentResult{Percent: GCPercentWithLimit}, r)
	require.Equal(t, []int{GCPercentWithLimit}, calls)

	calls = nil
	r = applyGCPercent(memoryLimitResult{GOMEMLIMIT: "1GiB", Limit: 1 << 30}, noEnv, set)
	require.Equal(t, gcPercentResult{Percent: GCPercentWithLimit}, r, "a limit from GOMEMLIMIT counts too")

	calls = nil
	r = applyGCPercent(memoryLimitResult{Limit: math.MaxInt64}, noEnv, set)
	require.Equal(t, gcPercentResult{}, r, "without a limit GOGC stays the runtime's")
	require.Empty(t, calls)

	getenv := func(k string) string {
		if k == "GOGC" {
			return "off"
		}
		return ""
	}
	r = applyGCPercent(memoryLimitResult{Limit: config.MemoryLimitDefault}, getenv, set)
	require.Equal(t, gcPercentResult{GOGC: "off"}, r, "GOGC in the environment wins")
	require.Empty(t, calls)
}

func TestGCPercentLogged(t *testing.T) {
	var buf bytes.Buffer
	l := logrus.New()
	l.SetOutput(&buf)
	l.SetFormatter(&logrus.JSONFormatter{})
	logGCPercent(logrus.NewEntry(l), gcPercentResult{Percent: GCPercentWithLimit})
	logGCPercent(logrus.NewEntry(l), gcPercentResult{GOGC: "200"})
	logGCPercent(logrus.NewEntry(l), gcPercentResult{})
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	require.Len(t, lines, 2, "nothing is logged when GOGC is left alone")
	require.Contains(t, lines[0], `"gogc":400`)
	require.Contains(t, lines[1], `"GOGC":"200"`)
}
