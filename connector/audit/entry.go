package audit

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/appwrite-sync/appwrite-sync/connector"
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

// Entry is one audited delivery.
type Entry struct {
	Seq        int64
	ReceivedAt time.Time // UTC, whole microseconds (what timestamptz keeps)
	// WebhookID, ProjectID and UserID are the headers; "" is stored as NULL.
	WebhookID, ProjectID, UserID string
	// Events is the X-Appwrite-Webhook-Events header as received.
	Events string
	// Payload is the body when jsonb can hold it, else BodyWrapped(body).
	Payload []byte
	// Digest identifies a byte-identical redelivery (Digest).
	Digest []byte
	// PrevHash and Hash chain the entry (set when it is recorded).
	PrevHash, Hash string
}

// NewEntry builds the entry of a verified delivery received at received.
func NewEntry(header http.Header, body []byte, received time.Time) Entry {
	events := header.Get(HeaderEvents)
	e := Entry{
		ReceivedAt: received.UTC().Truncate(time.Microsecond),
		WebhookID:  cleanText(header.Get(HeaderID)),
		ProjectID:  cleanText(header.Get(HeaderProjectID)),
		UserID:     cleanText(header.Get(HeaderUserID)),
		Events:     cleanText(events),
		Digest:     Digest(events, body),
		Payload:    body,
	}
	if !json.Valid(body) || !utf8.Valid(body) {
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

// ChainHash is an entry's hash: hex(SHA-256(prevHash "\n" seq "\n" canonical)).
func ChainHash(prevHash string, seq int64, canonical string) string {
	h := sha256.New()
	h.Write([]byte(prevHash))
	h.Write([]byte{'\n'})
	h.Write(strconv.AppendInt(nil, seq, 10))
	h.Write([]byte{'\n'})
	h.Write([]byte(canonical))
	return hex.EncodeToString(h.Sum(nil))
}

// cleanText makes a header value storable as Postgres text (valid UTF-8, no NUL); Appwrite's
// headers are ASCII, so this changes nothing they send.
func cleanText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.ReplaceAll(s, "\x00", "")
}
