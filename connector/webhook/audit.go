package webhook

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/appwrite-sync/appwrite-sync/connector"
)

// Auditor keeps the audit log (package connector/audit): every verified delivery it selects,
// whatever its resource, is recorded before the answer.
type Auditor interface {
	// Selects reports whether a delivery with this X-Appwrite-Webhook-Events header is audited.
	Selects(events string) bool
	// Audit durably records the delivery and returns nil only after commit (or when a
	// byte-identical delivery was recorded before). An error means it was not recorded: the
	// handler answers 503. The handler calls it for deliveries that are not a row change of a
	// mapped table.
	Audit(ctx context.Context, header http.Header, body []byte, received time.Time) error
	// Entry is the delivery's entry, for a row change of a mapped table: it rides with the
	// change (Change.Audit), and the Recorder commits both in one transaction. body decoded
	// as the change: it is one JSON object in valid UTF-8 (connector.ContentHash).
	Entry(header http.Header, body []byte, received time.Time) *connector.AuditEntry
}

// OutcomeAudited is the outcome of a delivery recorded in the audit log only: not a row
// event, or a row of an unmapped table (200).
const OutcomeAudited = "audited"

// answerAudited is the answer to such a delivery (shared: never modify it).
var answerAudited = gin.H{"recorded": true, "audit": true}

// audited reports whether the delivery is selected for the audit log.
func (h *Handler) audited(events string) bool {
	return h.auditor != nil && h.auditor.Selects(events)
}

// auditAlone records a selected delivery that is not a row change of a mapped table (its
// entry has no change to ride with), or the 503 to answer.
func (h *Handler) auditAlone(ctx context.Context, ep *Endpoint, header http.Header, body []byte, start time.Time, res *Result) (int, gin.H) {
	if err := h.auditor.Audit(ctx, header, body, start); err != nil {
		return h.auditUnavailable(ep, err, res)
	}
	res.Audited = true
	return 0, nil
}

// auditUnavailable is the answer when a selected delivery's entry was not committed: nothing
// of the delivery is stored (never a 200 without the entry).
func (h *Handler) auditUnavailable(ep *Endpoint, err error, res *Result) (int, gin.H) {
	res.Outcome, res.Reason, res.err = OutcomeUnavailable, "recording the audit entry failed", err
	return http.StatusServiceUnavailable, gin.H{
		"error":   "state store unavailable; the event was not stored in the audit log (nor its change)",
		"webhook": ep.Name,
		"hint": "audited webhooks are answered 503 while the state store cannot commit, even with state.spool_dir set: " +
			"the audit log is kept in the state store only",
	}
}
