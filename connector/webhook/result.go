package webhook

import (
	"context"
	"errors"
	"time"

	"github.com/sirupsen/logrus"
)

// Outcomes of a request, as reported in Result.Outcome (and used as a metrics label).
const (
	OutcomeRecorded     = "recorded"     // 200: change durably stored
	OutcomeIgnored      = "ignored"      // 200: not a row event, or an unmapped table
	OutcomeQuarantined  = "quarantined"  // 202: validly signed but not understood; kept for replay
	OutcomeUnauthorized = "unauthorized" // 401: basic auth or signature missing or wrong
	OutcomeTooLarge     = "too_large"    // 413: body over the limit
	OutcomeUnavailable  = "unavailable"  // 503: state store failed; nothing acknowledged
	OutcomeBadRequest   = "bad_request"  // 400: the body could not be read
	OutcomeNotFound     = "not_found"    // 404: no endpoint
	OutcomeRateLimited  = "rate_limited" // 429: the client IP is over limits.rate_per_source
	OutcomeBusy         = "busy"         // 503: no room in the intake budget (limits.body_budget_bytes) in time
)

// Result describes one handled request, for the log line and the Observe hook. It never holds
// a body, a key or a credential.
type Result struct {
	// Webhook is the Endpoint name ("" when no endpoint matched).
	Webhook string
	// Outcome is one of the Outcome constants.
	Outcome string
	// Status is the HTTP status answered.
	Status int
	// Event is the first element of X-Appwrite-Webhook-Events, set only once the signature is
	// verified (an unauthenticated header is not worth logging).
	Event string
	// Table is "database/table" and RowID the row's $id, set once decoded.
	Table string
	RowID string
	// Recorded says whether a recorded change was new, stale or a duplicate (Outcome
	// "recorded" only).
	Recorded Recorded
	// Audited: the delivery is in the audit log (Outcome "audited", or any later outcome).
	Audited bool
	// Reason says why a request was ignored, quarantined or refused.
	Reason string
	// Latency is from the start of the request (before reading the body) to the answer.
	Latency time.Duration
	// err is the Recorder's error behind an "unavailable" outcome, for the log only.
	err error
	// verified: the request's signature was checked and valid.
	verified bool
}

// Log field keys: constant so log queries and dashboards can rely on them.
const (
	logStatus  = "status"
	logLatency = "latency_ms"
	logWebhook = "webhook"
	logEvent   = "event"
	logTable   = "table"
	logRowID   = "row_id"
	logOutcome = "outcome"
	logReason  = "reason"
	logResult  = "result"
)

// report writes the request's single log line and feeds the Observe hook.
func (h *Handler) report(res Result) {
	if h.observe != nil {
		defer h.observe(res)
	}
	quiet := res.Outcome != OutcomeUnavailable && res.Outcome != OutcomeUnauthorized && res.Outcome != OutcomeTooLarge &&
		res.Outcome != OutcomeQuarantined && res.Outcome != OutcomeBadRequest && res.Outcome != OutcomeRateLimited &&
		res.Outcome != OutcomeBusy
	if quiet && !h.log.Logger.IsLevelEnabled(logrus.DebugLevel) {
		return // skip building the fields of a line nobody will see
	}
	fields := logrus.Fields{
		logStatus:  res.Status,
		logLatency: float64(res.Latency.Microseconds()) / 1000,
		logWebhook: res.Webhook,
		logEvent:   res.Event,
		logTable:   res.Table,
		logRowID:   res.RowID,
		logOutcome: res.Outcome,
	}
	if res.Reason != "" {
		fields[logReason] = res.Reason
	}
	if res.Outcome == OutcomeRecorded {
		fields[logResult] = res.Recorded.String()
	}
	entry := h.log.WithFields(fields)
	if res.err != nil {
		entry = entry.WithError(res.err)
	}
	switch res.Outcome {
	case OutcomeUnavailable:
		// A canceled request (Appwrite gave up waiting) is not a store failure worth an alert.
		if errors.Is(res.err, context.Canceled) {
			entry.Info("webhook request")
		} else {
			entry.Error("webhook request")
		}
	case OutcomeUnauthorized, OutcomeTooLarge, OutcomeQuarantined, OutcomeBadRequest, OutcomeRateLimited, OutcomeBusy:
		entry.Warn("webhook request")
	default:
		// Accepted and ignored requests are the steady stream (thousands per second at peak):
		// metrics count them; the line is for debugging.
		entry.Debug("webhook request")
	}
}
