package main

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/internal/pgtest"
)

// postAnswer posts e like post and returns the status and the body of the answer.
func postAnswer(t testing.TB, base, id string, e event) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/webhooks/appwrite", bytes.NewReader(e.body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Appwrite-Webhook-Events", e.eventName(id)+",databases.*.tables.*.rows.*."+e.action)
	req.Header.Set("X-Appwrite-Webhook-Signature", sign(webhookURL, e.body))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// TestWebhookAnswerSaysWhatHappened: through the real ledger, the 200 tells a new version from
// a redelivery of the same one and from an older one that arrived late.
func TestWebhookAnswerSaysWhatHappened(t *testing.T) {
	t.Parallel()
	state := pgtest.NewDatabase(t)
	in := startInstance(t, testConfig(t, state, state, ""))
	t0 := time.Date(2026, 3, 26, 10, 0, 0, 0, time.UTC)
	newer := event{"update", rowBody("w1", t0.Add(time.Minute), "second", 2, "a")}
	for _, c := range []struct {
		e    event
		want string
	}{
		{newer, `{"recorded":true,"result":"new"}`},
		{newer, `{"recorded":true,"result":"duplicate"}`},
		{event{"update", rowBody("w1", t0, "first", 1, "a")}, `{"recorded":true,"result":"stale"}`},
	} {
		status, body := postAnswer(t, in.base, "w1", c.e)
		require.Equal(t, http.StatusOK, status, body)
		require.Equal(t, c.want, body)
	}
}
