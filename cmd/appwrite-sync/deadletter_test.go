package main

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/internal/pgtest"
	"github.com/appwrite-sync/appwrite-sync/migrations"
)

func adminPost(t *testing.T, in *instance, path, body string) (int, string) {
	req, _ := http.NewRequest(http.MethodPost, in.admin+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

// A row whose value does not convert to its column type is dead-lettered with the reason while
// the rest of its batch lands; a newer, good version of it is applied; the admin API lists and
// re-drives dead letters; an undecodable but validly signed request is quarantined (202).
func TestDeadLetterAndQuarantine(t *testing.T) {
	t.Parallel()
	state := pgtest.NewMigratedDatabase(t, migrations.Up)
	in := startInstance(t, testConfig(t, state, state, ""))
	t0 := time.Date(2026, 3, 26, 10, 0, 0, 0, time.UTC)
	for _, id := range []string{"g1", "g2"} {
		require.Equal(t, 200, post(t, in.base, id, event{"create", rowBody(id, t0, "ok", 1, "a")}))
	}
	bad := []byte(strings.Replace(string(rowBody("bad", t0, "x", 1, "a")), `"views":1`, `"views":"abc"`, 1))
	require.Equal(t, 200, post(t, in.base, "bad", event{"create", bad}))
	require.Eventually(t, func() bool {
		_, body := adminGet(t, in, "/admin/dead-letter")
		return strings.Contains(body, `"row_id":"bad"`)
	}, 20*time.Second, 50*time.Millisecond)
	_, body := adminGet(t, in, "/admin/dead-letter")
	require.Contains(t, body, `column \"views\"`)
	require.Contains(t, body, "bigint")
	got := warehouseRows(t, state)
	require.Contains(t, got, "g1")
	require.Contains(t, got, "g2")
	require.NotContains(t, got, "bad")
	code, body := adminGet(t, in, "/admin/status")
	require.Equal(t, 200, code)
	require.Contains(t, body, `"dead_letter":1`)

	// Replay without a fix dead-letters again; a newer good version clears it.
	code, body = adminPost(t, in, "/admin/dead-letter/replay", `{"row_id":"bad"}`)
	require.Equal(t, 200, code)
	require.Contains(t, body, `"replayed":1`)
	require.Equal(t, 200, post(t, in.base, "bad", event{"update", rowBody("bad", t0.Add(time.Second), "fixed", 7, "a")}))
	waitDrained(t, state, 20*time.Second)
	require.Eventually(t, func() bool { return warehouseRows(t, state)["bad"].Title == "fixed" }, 10*time.Second, 50*time.Millisecond)
	_, body = adminGet(t, in, "/admin/dead-letter")
	require.NotContains(t, body, `"row_id":"bad"`)

	// Quarantine: valid signature, row-shaped event, body that is not a row.
	garbage := []byte(`{"$id":"q1","$updatedAt":"not a date"}`)
	require.Equal(t, 202, post(t, in.base, "q1", event{"create", garbage}))
	// A body that is not valid UTF-8, which Postgres refuses to store as text: it used to fail
	// the group commit of every request it shared one with (503, "state store unavailable").
	notUTF8 := []byte(strings.Replace(string(rowBody("q2", t0, "x", 1, "a")), `"title":"x"`, "\"title\":\"caf\xe9\"", 1))
	require.Equal(t, 202, post(t, in.base, "q2", event{"create", notUTF8}))
	code, body = adminGet(t, in, "/admin/quarantine")
	require.Equal(t, 200, code)
	require.Contains(t, body, `"webhook":"webhooks[0]"`)
	require.Contains(t, body, "row is not valid UTF-8 (byte ")
	code, body = adminPost(t, in, "/admin/quarantine/replay", "")
	require.Equal(t, 200, code)
	require.Contains(t, body, `"failed":2`)

	// The admin API refuses a wrong token.
	req, _ := http.NewRequest(http.MethodGet, in.admin+"/admin/status", nil)
	req.Header.Set("Authorization", "Bearer nope")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
}
