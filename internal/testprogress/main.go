// Command testprogress turns `go test -json` into progress a person can follow: a line when a
// package's tests start (compiling comes first, and from an empty build cache takes minutes
// with -race), one line per finished top-level test with the time since the start, the full output of a test as soon as
// it fails, and go test's own per-package lines ("ok", "FAIL", "?") as they come. It ends with
// those per-package lines again, in package order, so the run still closes the way plain
// `go test` closes (CI reads the closing lines). It exits non-zero when a test, a package or a
// build failed. `make test` pipes into it:
//
//	go test -json ./... | go run ./internal/testprogress
//
// The suite runs a few minutes on two cores, and plain `go test ./...` prints nothing until a
// package finishes, which for the end-to-end package is most of the run.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action     string
	Package    string
	Test       string
	Elapsed    float64
	Output     string
	ImportPath string // build-output and build-fail events
}

func main() {
	failed, err := run(os.Stdin, os.Stdout, time.Now)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testprogress:", err)
		os.Exit(2)
	}
	if failed {
		os.Exit(1)
	}
}

// run reads events from r and writes progress to w; failed reports whether anything failed.
func run(r io.Reader, w io.Writer, now func() time.Time) (failed bool, err error) {
	start := now()
	stamp := func() string {
		d := now().Sub(start).Round(time.Second)
		return fmt.Sprintf("[%02d:%02d]", int(d.Minutes()), int(d.Seconds())%60)
	}
	outputs := map[string][]string{} // package + "\x00" + top-level test → its output so far
	pkgLines := map[string]string{}  // package → go test's closing line for it
	fmt.Fprintf(w, "%s compiling and running the tests\n", stamp())
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			fmt.Fprintln(w, string(line)) // not an event (e.g. a go command error): pass it on
			continue
		}
		top, _, _ := strings.Cut(e.Test, "/")
		key := e.Package + "\x00" + top
		switch {
		case e.Action == "start":
			fmt.Fprintf(w, "%s run  %s\n", stamp(), shortPkg(e.Package))
		case e.Action == "build-output":
			fmt.Fprint(w, e.Output)
		case e.Action == "build-fail":
			failed = true
		case e.Action == "output" && e.Test != "":
			outputs[key] = append(outputs[key], e.Output)
		case e.Action == "output":
			// Package-level output: go test's closing line, or what a failing package printed
			// outside any test (a panic in TestMain, a timeout).
			if isPackageLine(e.Output) {
				pkgLines[e.Package] = strings.TrimRight(e.Output, "\n")
				fmt.Fprintf(w, "%s %s", stamp(), e.Output)
			} else if strings.TrimSpace(e.Output) != "PASS" {
				outputs[e.Package+"\x00"] = append(outputs[e.Package+"\x00"], e.Output)
			}
		case (e.Action == "pass" || e.Action == "fail" || e.Action == "skip") && e.Test != "" && e.Test == top:
			if e.Action == "fail" {
				failed = true
				fmt.Fprintf(w, "%s FAIL %s %s (%.2fs)\n%s", stamp(), e.Package, e.Test, e.Elapsed, strings.Join(outputs[key], ""))
			} else if e.Action == "pass" {
				fmt.Fprintf(w, "%s ok   %s %s (%.2fs)\n", stamp(), shortPkg(e.Package), e.Test, e.Elapsed)
			}
			delete(outputs, key)
		case e.Action == "fail" && e.Test == "":
			failed = true
			if out := outputs[e.Package+"\x00"]; len(out) > 0 {
				fmt.Fprint(w, strings.Join(out, ""))
			}
		}
	}
	if err := sc.Err(); err != nil {
		return true, err
	}
	fmt.Fprintf(w, "\n%s done; per package:\n", stamp())
	for _, p := range slices.Sorted(maps.Keys(pkgLines)) {
		fmt.Fprintln(w, pkgLines[p])
	}
	return failed, nil
}

// isPackageLine reports whether s is go test's per-package result line.
func isPackageLine(s string) bool {
	for _, p := range []string{"ok  \t", "FAIL\t", "?   \t"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// shortPkg drops the module path, which every package of the run shares.
func shortPkg(p string) string {
	if i := strings.Index(p, "/appwrite-sync/"); i >= 0 {
		return p[i+len("/appwrite-sync/"):]
	}
	return p
}
