package webhook

import (
	"context"
	"errors"
	"fmt"

	"github.com/appwrite-sync/appwrite-sync/connector"
)

// Replay re-runs a quarantined request: its signature was verified when it arrived, so only
// decoding and recording are left. The change keeps the delivery's acting user (kept with the
// quarantined headers) and has source replay. mapped says whether a table is mapped; record records the
// change and describes the outcome. It returns whether the request is done with (recorded,
// or ignored for good) and what happened, for the quarantine's replay_result.
func Replay[R fmt.Stringer](ctx context.Context, headers map[string]string, body []byte, mapped func(connector.TableKey) bool,
	record func(context.Context, connector.Change) (R, error)) (bool, string) {
	ch, err := Decode(headers[HeaderEvents], body)
	if errors.Is(err, ErrNotRowEvent) {
		return true, "ignored: not a row event"
	}
	if err != nil {
		return false, "still not decodable: " + err.Error()
	}
	if !mapped(ch.Key) {
		return true, "ignored: table " + ch.Key.String() + " is not mapped"
	}
	ch.Actor, ch.Source = headers[HeaderUserID], connector.SourceReplay
	res, err := record(ctx, ch)
	if err != nil {
		return false, "not recorded: " + err.Error()
	}
	return true, res.String()
}
