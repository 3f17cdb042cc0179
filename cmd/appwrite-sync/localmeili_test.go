package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/internal/pgtest"
)

// meiliScript runs scripts/local-meilisearch.sh start in a fresh directory with a PATH that
// holds the tools it uses plus the given stubs (name -> shell script), and no others.
func meiliScript(t *testing.T, meiliURL string, stubs map[string]string) (dir, out string) {
	t.Helper()
	script, err := filepath.Abs("../../scripts/local-meilisearch.sh")
	require.NoError(t, err)
	bin := t.TempDir()
	for _, tool := range []string{"sed", "head", "curl", "timeout", "mkdir", "nohup", "cat", "rm", "env", "sh"} {
		p, err := exec.LookPath(tool)
		require.NoError(t, err, tool)
		require.NoError(t, os.Symlink(p, filepath.Join(bin, tool)))
	}
	for name, body := range stubs {
		require.NoError(t, os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"+body), 0o755))
	}
	dir = t.TempDir()
	cmd := exec.Command("bash", script, "start")
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + bin, "HOME=" + dir, "MEILI_URL=" + meiliURL, "STUB_OUT=" + filepath.Join(dir, "stub.out")}
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "the script never fails make run: %s", b)
	return dir, string(b)
}

func closedURL(t *testing.T) string {
	ports, err := pgtest.FreePorts(1)
	require.NoError(t, err)
	return fmt.Sprintf("http://127.0.0.1:%d", ports[0])
}

// stubArgs waits for a stub to have written its arguments.
func stubArgs(t *testing.T, dir string) string {
	var b []byte
	require.Eventually(t, func() bool {
		var err error
		b, err = os.ReadFile(filepath.Join(dir, "stub.out"))
		return err == nil && len(b) > 0
	}, 5*time.Second, 10*time.Millisecond)
	return string(b)
}

// TestMakeRunFindsOrExplainsMeilisearch: `make run` uses a Meilisearch that answers, else
// starts the binary on PATH, else Docker, with the data in ./.data/meili; with none, it says in
// one line how to run one and that the search sink waits.
func TestMakeRunFindsOrExplainsMeilisearch(t *testing.T) {
	t.Parallel()
	t.Run("none", func(t *testing.T) {
		t.Parallel()
		url := closedURL(t)
		_, out := meiliScript(t, url, map[string]string{"docker": "exit 1\n"}) // a docker CLI without a daemon
		require.Equal(t, 1, strings.Count(out, "\n"), out)
		require.Contains(t, out, "meilisearch: none at "+url+", no meilisearch on PATH, no Docker: the search sink waits")
		require.Contains(t, out, "docker run -p 127.0.0.1:")
	})
	t.Run("running", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/health" {
				w.Write([]byte(`{"status":"available"}`))
				return
			}
			http.NotFound(w, r)
		}))
		t.Cleanup(srv.Close)
		_, out := meiliScript(t, srv.URL, map[string]string{"meilisearch": "exit 1\n"})
		require.Equal(t, "meilisearch: using the one answering at "+srv.URL+"\n", out)
	})
	t.Run("binary", func(t *testing.T) {
		t.Parallel()
		url := closedURL(t)
		dir, out := meiliScript(t, url, map[string]string{"meilisearch": `echo "$@" > "$STUB_OUT"` + "\n"})
		require.Contains(t, out, "meilisearch: started ")
		port := url[strings.LastIndex(url, ":")+1:]
		require.Contains(t, stubArgs(t, dir), "--db-path "+filepath.Join(dir, ".data/meili/data.ms")+" ")
		require.Contains(t, stubArgs(t, dir), "--http-addr 127.0.0.1:"+port)
	})
	t.Run("docker", func(t *testing.T) {
		t.Parallel()
		url := closedURL(t)
		dir, out := meiliScript(t, url, map[string]string{"docker": `[ "$1" = run ] && echo "$@" > "$STUB_OUT"; exit 0` + "\n"})
		require.Contains(t, out, "in Docker")
		args := stubArgs(t, dir)
		require.Contains(t, args, "-v "+filepath.Join(dir, ".data/meili")+":/meili_data")
		require.Contains(t, args, " getmeili/meilisearch:v")
	})
}
