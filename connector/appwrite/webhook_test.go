package appwrite_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector/appwrite"
	"github.com/appwrite-sync/appwrite-sync/internal/appwritetest"
)

func TestGetWebhook(t *testing.T) {
	t.Parallel()
	b := setup(t, appwritetest.Options{Version: "1.9.0"}, nil)
	b.srv.SetWebhook("wh1", false, 10)
	ctx := ctxTimeout(t, 10*time.Second)

	w, err := b.client.GetWebhook(ctx, "wh1")
	require.NoError(t, err)
	assert.Equal(t, "wh1", w.ID)
	assert.False(t, w.Enabled)
	assert.Equal(t, 10, w.Attempts)
	assert.NotEmpty(t, w.Logs)
	assert.NotContains(t, fmt.Sprintf("%+v", w), "webhook-basic-auth-password", "secrets are not decoded")

	_, err = b.client.GetWebhook(ctx, "nope")
	assert.ErrorIs(t, err, appwrite.ErrWebhookNotFound)
	assert.NotErrorIs(t, err, appwrite.ErrNotSupported)

	scopeless := setup(t, appwritetest.Options{Version: "1.9.0", Scopes: []string{"rows.read"}}, nil)
	_, err = scopeless.client.GetWebhook(ctx, "wh1")
	assert.ErrorIs(t, err, appwrite.ErrUnauthorized)
	assert.ErrorContains(t, err, "lacks scope webhooks.read")
}

func TestGetWebhookNotSupportedBefore19(t *testing.T) {
	t.Parallel()
	for _, so := range []appwritetest.Options{{Version: "1.8.1"}, {Legacy: true}} {
		b := setup(t, so, nil)
		_, err := b.client.GetWebhook(ctxTimeout(t, 10*time.Second), "wh1")
		assert.ErrorIs(t, err, appwrite.ErrNotSupported, so.Version)
		assert.ErrorContains(t, err, "1.9+")
	}
}

// EnableWebhook enables a disabled webhook with PUT /v1/webhooks/{id} and sends back every
// setting the route replaces, so the URL, events, TLS check and basic auth stay as they were.
func TestEnableWebhook(t *testing.T) {
	t.Parallel()
	scopes := append(append([]string(nil), appwritetest.DefaultScopes...), "webhooks.write")
	b := setup(t, appwritetest.Options{Version: "1.9.0", Scopes: scopes}, nil)
	b.srv.SetWebhook("wh1", false, 10)
	before, _ := b.srv.Webhook("wh1")
	ctx := ctxTimeout(t, 10*time.Second)

	w, err := b.client.EnableWebhook(ctx, "wh1")
	require.NoError(t, err)
	assert.True(t, w.Enabled)
	assert.Zero(t, w.Attempts)
	after, _ := b.srv.Webhook("wh1")
	assert.True(t, after.Enabled)
	assert.Zero(t, after.Attempts)
	before.Enabled, before.Attempts, before.UpdatedAt, after.UpdatedAt = true, 0, "", ""
	before.Logs, after.Logs = "", ""
	assert.Equal(t, before, after, "every other setting is kept (tls, basic auth, url, events)")

	_, err = b.client.EnableWebhook(ctx, "nope")
	assert.ErrorIs(t, err, appwrite.ErrWebhookNotFound)

	readOnly := setup(t, appwritetest.Options{Version: "1.9.0"}, nil)
	readOnly.srv.SetWebhook("wh1", false, 10)
	_, err = readOnly.client.EnableWebhook(ctx, "wh1")
	assert.ErrorIs(t, err, appwrite.ErrUnauthorized)
	assert.ErrorContains(t, err, "lacks scope webhooks.write")
	still, _ := readOnly.srv.Webhook("wh1")
	assert.False(t, still.Enabled)

	old := setup(t, appwritetest.Options{Version: "1.8.1"}, nil)
	_, err = old.client.EnableWebhook(ctx, "wh1")
	assert.ErrorIs(t, err, appwrite.ErrNotSupported)
}
