package audit

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/internal/pgtext"
	"github.com/appwrite-sync/appwrite-sync/internal/rawjson"
)

// Appwrite delivery headers an entry keeps.
const (
	HeaderEvents    = connector.HeaderEvents
	HeaderID        = connector.HeaderID
	HeaderProjectID = connector.HeaderProjectID
	HeaderUserID    = connector.HeaderUserID
)

// GenesisHash is the prev_hash of the first entry (seq 1).
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// TableDefault is audit.table when unset (in warehouse.schema).
const TableDefault = "audit_log"

// canonicalSQL renders an entry's canonical form from the columns received_at, webhook_id,
// project_id, user_id, events, event and payload (see the package documentation).
const canonicalSQL = `jsonb_build_array(to_char(received_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), ` +
	`webhook_id, project_id, user_id, events, event, payload)::text`

// Entry is one audited delivery (the ledger records it with the row change it carried).
type Entry = connector.AuditEntry

// NewEntry builds the entry of a verified delivery received at received.
func NewEntry(header http.Header, body []byte, received time.Time) Entry {
	return newEntry(header, body, received, json.Valid(body) && utf8.Valid(body))
}

// newEntry is NewEntry for a body already known to be valid JSON in valid UTF-8 or not (valid):
// a row change's body passed the webhook decoder's content hash, which accepts exactly those.
func newEntry(header http.Header, body []byte, received time.Time, valid bool) Entry {
	events := header.Get(HeaderEvents)
	e := Entry{
		ReceivedAt: received.UTC().Truncate(time.Microsecond),
		WebhookID:  pgtext.Clean(header.Get(HeaderID), 0),
		ProjectID:  pgtext.Clean(header.Get(HeaderProjectID), 0),
		UserID:     pgtext.Clean(header.Get(HeaderUserID), 0),
		Events:     pgtext.Clean(events, 0),
		Digest:     Digest(events, body),
		Payload:    body,
	}
	if !valid || !rawjson.JSONBHolds(body) {
		e.Payload = BodyWrapped(body)
	}
	return e
}

// Digest is SHA-256 of the events header, "\n" and the body: equal for byte-identical
// deliveries (a header never holds a newline).
func Digest(events string, body []byte) []byte {
	h := sha256.New()
	h.Write([]byte(events))
	h.Write([]byte{'\n'})
	h.Write(body)
	return h.Sum(nil)
}

// BodyWrapped is the payload kept for a body jsonb cannot hold.
func BodyWrapped(body []byte) []byte {
	b, _ := json.Marshal(map[string]string{"$body_base64": base64.StdEncoding.EncodeToString(body)})
	return b
}
