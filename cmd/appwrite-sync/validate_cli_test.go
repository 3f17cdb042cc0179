package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/internal/pgtest"
)

// freshEnv is the environment of a fresh shell: none of the config's variables, only what the
// go tool needs to find its caches.
func freshEnv(t *testing.T) []string {
	t.Helper()
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for _, k := range []string{"GOCACHE", "GOMODCACHE", "GOPATH", "GOFLAGS", "GOPROXY", "GOTOOLCHAIN"} {
		if out, err := exec.Command("go", "env", k).Output(); err == nil && len(bytes.TrimSpace(out)) > 0 {
			env = append(env, k+"="+string(bytes.TrimSpace(out)))
		}
	}
	return env
}

func exitCode(t *testing.T, err error) int {
	t.Helper()
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	require.True(t, errors.As(err, &ee), "%v", err)
	return ee.ExitCode()
}

// TestValidateUnsetVariablesOnceExit2 runs the real binary on the example config in a fresh
// shell: each unset variable is one problem naming it and where to set it, and the exit code is
// the documented 2.
func TestValidateUnsetVariablesOnceExit2(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	cmd := exec.Command(bin, "validate", "--config", "../../config.yaml")
	cmd.Env = freshEnv(t)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.Equal(t, 2, exitCode(t, cmd.Run()), stderr.String())
	out := stderr.String()
	require.Contains(t, out, "3 problem(s)")
	for _, v := range []string{"APPWRITE_SYNC_ADMIN_TOKEN", "APPWRITE_WEBHOOK_SECRET", "DATABASE_URL"} {
		require.Equal(t, 1, strings.Count(out, "environment variable "+v+" is not set; export "+v+"="), out)
	}
	require.Contains(t, out, "make validate")
	require.NotContains(t, out, "redacted", "an unset variable has no value to redact")

	// Set but empty: one problem, without a "(got <redacted>)" for a value that is empty.
	cmd = exec.Command(bin, "validate", "--config", "../../config.yaml")
	cmd.Env = append(freshEnv(t), "APPWRITE_SYNC_ADMIN_TOKEN=", "APPWRITE_WEBHOOK_SECRET=s", "DATABASE_URL=postgres://u@h/db")
	stderr.Reset()
	cmd.Stderr = &stderr
	require.Equal(t, 2, exitCode(t, cmd.Run()), stderr.String())
	require.Contains(t, stderr.String(), "1 problem(s)")
	require.Contains(t, stderr.String(), "admin.token: admin.token is required when admin.listen is set;")
	require.NotContains(t, stderr.String(), "redacted")
}

// TestMakeValidateInFreshShell is the README's quick start check: `make validate` in a shell
// with none of the variables set builds the binary and validates config.yaml with the
// development defaults of `make run`, without a database.
func TestMakeValidateInFreshShell(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make")
	}
	cmd := exec.Command("make", "-s", "-C", "../..", "validate", "BIN="+buildBinary(t), "STATIC=0") // its build step finds it up to date
	cmd.Env = freshEnv(t)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	require.Contains(t, string(out), "config config.yaml is valid")
	require.Contains(t, string(out), `CREATE TABLE IF NOT EXISTS "appwrite"."posts"`)
}

// TestMakeStatusInFreshShell: `make status` reaches the instance config.yaml points at with the
// development defaults of `make run` (here an instance on ADMIN_LISTEN with that token).
func TestMakeStatusInFreshShell(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make")
	}
	state := pgtest.NewDatabase(t)
	in := startInstance(t, testConfig(t, state, state, ""))
	cmd := exec.Command("make", "-s", "-C", "../..", "status", "BIN="+buildBinary(t), "STATIC=0")
	cmd.Env = append(freshEnv(t), "ADMIN_LISTEN="+in.cfg.Admin.Listen, "APPWRITE_SYNC_ADMIN_TOKEN="+testToken)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	require.Regexp(t, `(?m)^SINK +STATE +PENDING`, string(out))
	require.Regexp(t, `(?m)^postgres +`, string(out))
}
