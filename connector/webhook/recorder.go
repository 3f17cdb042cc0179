package webhook

import (
	"context"
	"time"

	"github.com/appwrite-sync/appwrite-sync/connector"
)

// Recorder is where accepted requests go: the durable state store. The handler acknowledges a
// delivery only after the Recorder returned nil, because Appwrite never re-sends one.
type Recorder interface {
	// Record durably stores the change; it returns only after commit, saying whether the
	// change was new or already superseded. An error means the change was not stored (the
	// handler answers 503).
	Record(ctx context.Context, ch connector.Change) (Recorded, error)
	// Quarantine durably stores a validly signed request that could not be decoded or mapped,
	// so it can be inspected and replayed. An error means it was not stored (503).
	Quarantine(ctx context.Context, q Quarantined) error
}

// Recorded says what recording did with a change: the "result" of the 200 answer, for people
// debugging a delivery (Appwrite ignores the body).
type Recorded int

const (
	// RecordedNew: the change is the newest version of its row and goes to the sinks.
	RecordedNew Recorded = iota
	// RecordedStale: a newer version of the row was already recorded; nothing changed.
	RecordedStale
	// RecordedDuplicate: this exact version was already recorded; nothing changed.
	RecordedDuplicate
	// RecordedSpooled: the state store could not commit, and the change was fsync'd to the
	// local spool instead (state.spool_dir); it is recorded, through the same version guard,
	// once the state store is back.
	RecordedSpooled
)

func (r Recorded) String() string {
	if r < 0 || int(r) >= len(recordedNames) {
		return "new"
	}
	return recordedNames[r]
}

var recordedNames = [...]string{RecordedNew: "new", RecordedStale: "stale", RecordedDuplicate: "duplicate", RecordedSpooled: "spooled"}

// Quarantined is a validly signed request kept for a human: why it was not understood and
// everything needed to replay it.
type Quarantined struct {
	// Webhook is the Endpoint name the request arrived on.
	Webhook string
	// Reason is the DecodeError's reason.
	Reason string
	// Headers holds only the Appwrite delivery headers a replay or a human needs
	// (X-Appwrite-Webhook-Events, -Id, -Name, -Project-Id, -User-Id, User-Agent); never Authorization or
	// the signature.
	Headers map[string]string
	// Body is the raw request body, byte for byte.
	Body []byte
	// ReceivedAt is when the handler received the request (from the injected clock).
	ReceivedAt time.Time
}

// quarantineHeaders are the headers copied into Quarantined.Headers: identifying, and safe to
// show to anyone who may read the quarantine.
var quarantineHeaders = [...]string{
	HeaderEvents, HeaderID, HeaderName, HeaderProjectID, HeaderUserID, "User-Agent",
}

// NotStored is a Recorder that stores nothing and always fails. It lets the listener run before
// the ledger exists while honouring the contract: nothing that was not durably stored is ever
// acknowledged, so every delivery gets 503.
type NotStored struct{}

// Record always fails with ErrNotStored.
func (NotStored) Record(context.Context, connector.Change) (Recorded, error) { return 0, ErrNotStored }

// Quarantine always fails with ErrNotStored.
func (NotStored) Quarantine(context.Context, Quarantined) error { return ErrNotStored }
