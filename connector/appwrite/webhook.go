package appwrite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
)

// Webhook is what Appwrite (1.9+) tells about one webhook: whether it still delivers and how
// many deliveries failed in a row. Secrets of the response (signature key, basic-auth
// password) are deliberately not decoded.
type Webhook struct {
	ID        string   `json:"$id"`
	Name      string   `json:"name"`
	URL       string   `json:"url"`
	Events    []string `json:"events"`
	Enabled   bool     `json:"enabled"`
	Attempts  int      `json:"attempts"`
	Logs      string   `json:"logs"`
	TLS       bool     `json:"tls"`
	CreatedAt string   `json:"$createdAt"`
	UpdatedAt string   `json:"$updatedAt"`
}

// GetWebhook reads GET /webhooks/{id}. Servers before 1.9 have no such route for API keys:
// the error then matches ErrNotSupported. An unknown id matches ErrWebhookNotFound.
func (c *Client) GetWebhook(ctx context.Context, id string) (Webhook, error) {
	op := fmt.Sprintf("get webhook %s", id)
	if id == "" {
		return Webhook{}, fmt.Errorf("appwrite: %s: empty webhook id", op)
	}
	r := &request{op: op, path: "/webhooks/" + url.PathEscape(id), family: familyWebhooks, webhookID: id}
	var w Webhook
	if err := c.webhookCall(ctx, r, "GET /webhooks/{id} needs Appwrite 1.9+; webhook health cannot be watched", "the response", &w); err != nil {
		return Webhook{}, err
	}
	if w.ID == "" {
		return Webhook{}, fmt.Errorf("appwrite: %s: %w", op, errors.New("response has no $id"))
	}
	return w, nil
}

// webhookSettings are the fields PUT /webhooks/{id} replaces, as GET /webhooks/{id} reports
// them, secrets included. They live only for the length of EnableWebhook and are never logged.
type webhookSettings struct {
	Name         string   `json:"name"`
	URL          string   `json:"url"`
	Events       []string `json:"events"`
	Enabled      bool     `json:"enabled"`
	TLS          bool     `json:"tls"`
	AuthUsername string   `json:"authUsername"`
	AuthPassword string   `json:"authPassword"`
}

// ErrKeepsBasicAuth: the webhook has an HTTP user but Appwrite did not report its password, so
// an update (which replaces every field) would remove it; the webhook is left disabled.
var ErrKeepsBasicAuth = errors.New("the webhook's basic-auth password is not readable with this key")

// EnableWebhook enables a webhook again through PUT /webhooks/{id} (Appwrite 1.9+, key scope
// webhooks.write; Appwrite resets its failed-attempts counter then). The route replaces the
// name, URL, events, tls, authUsername and authPassword with what the request sends (an absent
// tls means no certificate check, an absent password no basic auth), so they are read first and
// sent back unchanged; the signature key is not part of the route and stays. Servers before 1.9
// answer with an error matching ErrNotSupported.
func (c *Client) EnableWebhook(ctx context.Context, id string) (Webhook, error) {
	op := fmt.Sprintf("enable webhook %s", id)
	if id == "" {
		return Webhook{}, fmt.Errorf("appwrite: %s: empty webhook id", op)
	}
	path := "/webhooks/" + url.PathEscape(id)
	var cur webhookSettings
	if err := c.webhookCall(ctx, &request{op: op, path: path, family: familyWebhooks, webhookID: id},
		"the webhooks API needs Appwrite 1.9+", "the webhook", &cur); err != nil {
		return Webhook{}, err
	}
	if cur.URL == "" || cur.Name == "" {
		return Webhook{}, fmt.Errorf("appwrite: %s: the webhook as read has no name or url; not updating it", op)
	}
	if cur.AuthUsername != "" && cur.AuthPassword == "" {
		return Webhook{}, fmt.Errorf("appwrite: %s: %w: enable it in the console (Settings → Webhooks)", op, ErrKeepsBasicAuth)
	}
	cur.Enabled = true
	put, err := json.Marshal(cur)
	if err != nil {
		return Webhook{}, fmt.Errorf("appwrite: %s: %w", op, err)
	}
	var w Webhook
	if err := c.webhookCall(ctx, &request{op: op, path: path, family: familyWebhooks, webhookID: id,
		method: http.MethodPut, body: put, scope: "webhooks.write"}, "PUT /webhooks/{id} needs Appwrite 1.9+", "the response", &w); err != nil {
		return Webhook{}, err
	}
	return w, nil
}

// webhookCall sends r to a webhooks route and decodes the answer (named what) into out. A
// server without the route answers with an error matching ErrNotSupported, saying why (needs).
func (c *Client) webhookCall(ctx context.Context, r *request, needs, what string, out any) error {
	body, err := c.do(ctx, r)
	if routeMissing(err) {
		return fmt.Errorf("appwrite: %s: %w (%s): %w", r.op, ErrNotSupported, needs, err)
	}
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("appwrite: %s: decoding %s: %w", r.op, what, err)
	}
	return nil
}
