package main

import (
	"errors"
	"sync"

	"github.com/sirupsen/logrus"

	"github.com/appwrite-sync/appwrite-sync/connector/ledger"
)

// notReadyReason answers /readyz when the reason is not one the ledger names.
const notReadyReason = "not ready"

// readiness turns the readiness check's result into what /readyz may say to anyone: a short,
// fixed reason (ledger.NotReadyError's), never the state store's address, user, database or
// the driver's text. Those go to the log, once each time the answer changes, so a probe every
// second does not flood it.
type readiness struct {
	log  *logrus.Entry
	mu   sync.Mutex
	last string // the reason last answered; "" while ready
}

// report returns the reason to answer for err ("" when err is nil: ready).
func (r *readiness) report(err error) string {
	reason := ""
	if err != nil {
		reason = notReadyReason
		var nr *ledger.NotReadyError
		if errors.As(err, &nr) {
			reason = nr.Reason
		}
	}
	r.mu.Lock()
	changed := reason != r.last
	r.last = reason
	r.mu.Unlock()
	switch {
	case !changed:
	case reason == "":
		r.log.Info("ready: the state store is reachable and migrated")
	default:
		r.log.WithError(err).WithField("reason", reason).Warn("not ready")
	}
	return reason
}
