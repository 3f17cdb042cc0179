package main

import (
	"math"
	"os"
	"runtime/debug"

	"github.com/sirupsen/logrus"

	"github.com/appwrite-sync/appwrite-sync/connector/config"
)

// Process setup of serve: the Go runtime's soft memory limit and GC target.

// memoryLimitResult is what applyMemoryLimit did.
type memoryLimitResult struct {
	// GOMEMLIMIT is the environment variable's value when it is set; then it is in effect and
	// memory_limit was not applied.
	GOMEMLIMIT string
	// Limit is the soft limit in bytes now in effect (math.MaxInt64: none).
	Limit int64
}

// applyRuntime sets serve's soft memory limit (memory_limit, config.MemoryLimitDefault says
// why) and, under it, GOGC, unless the environment sets GOMEMLIMIT or GOGC.
func applyRuntime(memoryLimit int64) (memoryLimitResult, gcPercentResult) {
	mem := applyMemoryLimit(memoryLimit, os.Getenv, debug.SetMemoryLimit)
	return mem, applyGCPercent(mem, os.Getenv, debug.SetGCPercent)
}

// applyMemoryLimit sets the soft memory limit to limit bytes (0: none) through set
// (debug.SetMemoryLimit), unless GOMEMLIMIT is set in the environment, which wins.
func applyMemoryLimit(limit int64, getenv func(string) string, set func(int64) int64) memoryLimitResult {
	if v := getenv("GOMEMLIMIT"); v != "" {
		return memoryLimitResult{GOMEMLIMIT: v, Limit: set(-1)} // -1 reads the limit without changing it
	}
	if limit <= 0 {
		limit = math.MaxInt64 // the runtime's default: no limit (SetMemoryLimit(0) would mean 0 bytes)
	}
	set(limit)
	return memoryLimitResult{Limit: limit}
}

// GCPercentWithLimit is the GOGC serve runs with under a soft memory limit (unless GOGC is
// set). The Go default, 100, collects whenever the heap doubles: with the small live heap of
// webhook ingest that is many collections a second, and their mark assists land on request
// goroutines (steady 2,000 req/s, three runs each: ack p99 15.7-18.1 ms at 100, 11.7-14.3 ms
// at 400, BENCHMARKS.md).
// The memory limit, not GOGC, then bounds the heap: the GC runs earlier as memory nears it.
const GCPercentWithLimit = 400

// gcPercentResult is what applyGCPercent did.
type gcPercentResult struct {
	GOGC    string // the environment variable's value when set: it is in effect
	Percent int    // the GOGC now in effect; 0 when unchanged from the runtime's
}

// applyGCPercent sets GOGC to GCPercentWithLimit when a soft memory limit is in effect and
// the GOGC environment variable is not set; set is debug.SetGCPercent.
func applyGCPercent(mem memoryLimitResult, getenv func(string) string, set func(int) int) gcPercentResult {
	if v := getenv("GOGC"); v != "" {
		return gcPercentResult{GOGC: v}
	}
	if mem.Limit == math.MaxInt64 {
		return gcPercentResult{} // without a limit a larger GOGC would only grow the heap
	}
	set(GCPercentWithLimit)
	return gcPercentResult{Percent: GCPercentWithLimit}
}

func logGCPercent(log *logrus.Entry, r gcPercentResult) {
	switch {
	case r.GOGC != "":
		log.WithField("GOGC", r.GOGC).Info("GC: GOGC is set and in effect")
	case r.Percent != 0:
		log.WithField("gogc", r.Percent).Info("GC: collecting less often under the soft memory limit")
	}
}

func logMemoryLimit(log *logrus.Entry, r memoryLimitResult) {
	shown := "off"
	if r.Limit != math.MaxInt64 {
		shown = config.FormatMemoryLimit(r.Limit)
	}
	switch {
	case r.GOMEMLIMIT != "":
		log.WithFields(logrus.Fields{"GOMEMLIMIT": r.GOMEMLIMIT, "limit": shown}).
			Info("soft memory limit: GOMEMLIMIT is set and in effect; memory_limit is ignored")
	case r.Limit == math.MaxInt64:
		log.WithField("memory_limit", shown).Info("soft memory limit off")
	default:
		log.WithFields(logrus.Fields{"memory_limit": shown, "bytes": r.Limit}).Info("soft memory limit set")
	}
}
