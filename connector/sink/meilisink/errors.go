package meilisink

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"

	meili "github.com/meilisearch/meilisearch-go"

	"github.com/appwrite-sync/appwrite-sync/connector"
)

// Meilisearch error codes and types the sink acts on.
const (
	codeIndexNotFound         = "index_not_found"
	codeIndexAlreadyExists    = "index_already_exists"
	codePrimaryKeyExists      = "index_primary_key_already_exists"
	codePayloadTooLarge       = "payload_too_large"
	codeMalformedPayload      = "malformed_payload"
	typeInternal              = "internal"
	typeSystem                = "system"
	typeAuth                  = "auth"
	reasonRejected            = "meilisearch rejected the document"
	reasonIndexMisconfigured  = "meilisearch index is not set up as the mapping says"
	reasonIDTooLong           = "row id cannot be a meilisearch document id"
	reasonDocumentUnencodable = "document does not encode as JSON"
)

// apiError returns the Meilisearch error an SDK call failed with, if it got an answer.
func apiError(err error) (*meili.Error, bool) {
	var me *meili.Error
	if errors.As(err, &me) && (me.ErrCode == meili.APIError || me.ErrCode == meili.APIErrorWithoutMessage) {
		return me, true
	}
	return nil, false
}

// hasCode reports whether err is an answer from Meilisearch with the error code.
func hasCode(err error, code string) bool {
	me, ok := apiError(err)
	return ok && string(me.APIError.Code) == code
}

// classify maps an SDK error to the engine's protocol: credentials refused →
// connector.ErrUnauthorized (pause, shown in status); server errors, timeouts and connection
// failures → connector.ErrSinkUnavailable (pause with backoff, nothing dead-lettered);
// anything else stays a plain error (the batch is retried with backoff).
func classify(op string, err error) error {
	if err == nil {
		return nil
	}
	if me, ok := apiError(err); ok {
		switch {
		case me.StatusCode == http.StatusUnauthorized || me.StatusCode == http.StatusForbidden || me.APIError.Type == typeAuth:
			return fmt.Errorf("%s: %w: %s (%s)", op, connector.ErrUnauthorized, me.APIError.Message, me.APIError.Code)
		case me.StatusCode >= 500 || me.StatusCode == http.StatusTooManyRequests || me.StatusCode == http.StatusRequestTimeout:
			return fmt.Errorf("%s: %w: HTTP %d %s (%s)", op, connector.ErrSinkUnavailable, me.StatusCode, me.APIError.Message, me.APIError.Code)
		}
		return fmt.Errorf("%s: HTTP %d %s (%s)", op, me.StatusCode, me.APIError.Message, me.APIError.Code)
	}
	var me *meili.Error
	var netErr net.Error
	if errors.As(err, &me) || errors.As(err, &netErr) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		// Timeouts, refused or dropped connections, retries exhausted, unreadable answers.
		return fmt.Errorf("%s: %w: %w", op, connector.ErrSinkUnavailable, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// taskErrorIsSystem reports whether a failed task failed because of the server (disk full,
// internal error) rather than its content: those are retried, never dead-lettered.
func taskErrorIsSystem(t *meili.Task) bool {
	return t.Error.Type == typeInternal || t.Error.Type == typeSystem
}
