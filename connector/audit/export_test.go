package audit

import "time"

// RenderSQL is what the delivery asks the warehouse for when it does not render an entry
// itself: canonicalSQL's definition over the entry's values.
const RenderSQL = renderSQL

// RenderInGo is the delivery's own rendering of an entry (its canonical form and its payload as
// jsonb text); ok is false when it leaves the entry to the warehouse (RenderSQL).
func RenderInGo(at time.Time, webhookID, projectID, userID *string, events string, payload []byte) (canonical, pl string, ok bool) {
	evs := splitEvents(events)
	var event *string
	if len(evs) > 0 {
		event = &evs[0]
	}
	c, p, ok := appendCanonical(nil, at, webhookID, projectID, userID, evs, event, payload)
	return string(c), string(p), ok
}
