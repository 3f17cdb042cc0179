package appwrite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	body, err := c.do(ctx, r)
	if routeMissing(err) {
		return Webhook{}, fmt.Errorf("appwrite: %s: %w (GET /webhooks/{id} needs Appwrite 1.9+; webhook health cannot be watched): %w",
			op, ErrNotSupported, err)
	}
	if err != nil {
		return Webhook{}, err
	}
	var w Webhook
	if err := json.Unmarshal(body, &w); err != nil {
		return Webhook{}, fmt.Errorf("appwrite: %s: decoding the response: %w", op, err)
	}
	if w.ID == "" {
		return Webhook{}, fmt.Errorf("appwrite: %s: %w", op, errors.New("response has no $id"))
	}
	return w, nil
}
