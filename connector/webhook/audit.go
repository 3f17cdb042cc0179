package webhook

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
)

// Auditor keeps the audit log (package connector/audit): every verified delivery it selects,
// whatever its resource, is recorded before the answer.
type Auditor interface {
	// Selects reports whether a delivery with this X-Appwrite-Webhook-Events header is audited.
	Selects(events string) bool
	// Audit durably records the delivery and returns nil only after commit (or when a
	// byte-identical delivery was recorded before). An error means it was not recorded: the
	// handler answers 503.
	Audit(ctx context.Context, header http.Header, body []byte, received time.Time) error
}

// OutcomeAudited is the outcome of a delivery recorded in the audit log only: not a row
// event, or a row of an unmapped table (200).
const OutcomeAudited = "audited"

// answerAudited is the answer to such a delivery (shared: never modify it).
var answerAudited = gin.H{"recorded": true, "audit": true}

// audit records a selected delivery before anything else is stored for it, so that an
// acknowledged row change always has its entry. It reports whether the delivery was audited,
// or the 503 to answer.
func (h *Handler) audit(ctx context.Context, ep *Endpoint, header http.Header, body []byte, events string, start time.Time, res *Result) (bool, int, gin.H) {
	if h.auditor == nil || !h.auditor.Selects(events) {
		return false, 0, nil
	}
	if err := h.auditor.Audit(ctx, header, body, start); err != nil {
		res.Outcome, res.Reason, res.err = OutcomeUnavailable, "recording the audit entry failed", err
		return false, http.StatusServiceUnavailable, gin.H{
			"error":   "state store unavailable; the event was not stored in the audit log (nor its change)",
			"webhook": ep.Name,
			"hint": "audited webhooks are answered 503 while the state store cannot commit, even with state.spool_dir set: " +
				"the audit log's order and hashes are given in the state store",
		}
	}
	res.Audited = true
	return true, 0, nil
}
