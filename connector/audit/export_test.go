package audit

import (
	"time"

	"github.com/appwrite-sync/appwrite-sync/internal/rawjson"
)

// RenderSQL is what the delivery asks the warehouse for when it does not render an entry
// itself: canonicalSQL's definition over the entry's values.
const RenderSQL = renderSQL

// RenderInGo is the delivery's own rendering of an entry (its canonical form and its payload as
// jsonb text); ok is false when it leaves the entry to the warehouse (RenderSQL).
func RenderInGo(at time.Time, webhookID, projectID, userID *string, events string, payload []byte) (canonical, pl string, ok bool) {
	p, ok := rawjson.AppendJSONB(nil, payload)
	if !ok {
		return "", "", false
	}
	evs := splitEvents(events)
	var event *string
	if len(evs) > 0 {
		event = &evs[0]
	}
	c, ok := appendCanonical(nil, at, webhookID, projectID, userID, evs, event, p)
	return string(c), string(p), ok
}
