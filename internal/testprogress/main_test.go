package main

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A passing test gets one line, a failing one its whole output at once, and the run ends with
// go test's per-package lines in package order.
func TestRunPrintsProgressAndEndsWithPackageLines(t *testing.T) {
	t.Parallel()
	in := strings.Join([]string{
		`{"Action":"start","Package":"m/b"}`,
		`{"Action":"output","Package":"m/b","Test":"TestA","Output":"=== RUN   TestA\n"}`,
		`{"Action":"pass","Package":"m/b","Test":"TestA","Elapsed":0.5}`,
		`{"Action":"output","Package":"m/b","Test":"TestB/sub","Output":"    x_test.go:4: boom detail\n"}`,
		`{"Action":"fail","Package":"m/b","Test":"TestB/sub","Elapsed":0}`,
		`{"Action":"fail","Package":"m/b","Test":"TestB","Elapsed":0}`,
		`{"Action":"output","Package":"m/b","Output":"FAIL\tm/b\t0.02s\n"}`,
		`{"Action":"fail","Package":"m/b","Elapsed":0.02}`,
		`{"Action":"output","Package":"m/a","Output":"ok  \tm/a\t1.5s\n"}`,
		`{"Action":"pass","Package":"m/a","Elapsed":1.5}`,
		`{"Action":"output","Package":"m/c","Output":"?   \tm/c\t[no test files]\n"}`,
	}, "\n")
	var out strings.Builder
	failed, err := run(strings.NewReader(in), &out, time.Now)
	require.NoError(t, err)
	require.True(t, failed)
	got := out.String()
	require.Contains(t, got, "run  m/b\n", "a package's start is shown")
	require.Contains(t, got, "ok   m/b TestA (0.50s)\n")
	require.Contains(t, got, "FAIL m/b TestB (0.00s)\n    x_test.go:4: boom detail\n", "a failure shows its subtests' output")
	require.True(t, strings.HasSuffix(got, "ok  \tm/a\t1.5s\nFAIL\tm/b\t0.02s\n?   \tm/c\t[no test files]\n"), got)
}

// A build failure fails the run even when no test ran.
func TestRunFailsOnBuildFailure(t *testing.T) {
	t.Parallel()
	in := `{"ImportPath":"m/a","Action":"build-output","Output":"a.go:1: syntax error\n"}
{"ImportPath":"m/a","Action":"build-fail"}
`
	var out strings.Builder
	failed, err := run(strings.NewReader(in), &out, time.Now)
	require.NoError(t, err)
	require.True(t, failed)
	require.Contains(t, out.String(), "a.go:1: syntax error")
}
