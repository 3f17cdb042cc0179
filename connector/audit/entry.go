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

// Entry is one audited delivery (the ledger records it with the row change it carried).
type Entry = connector.AuditEntry

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
	if !json.Valid(body) || !utf8.Valid(body) || !jsonbHolds(body) {
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

// jsonbHolds reports whether Postgres's jsonb accepts a valid JSON text: it refuses the
// escapes \u0000 and a \u surrogate that is not half of a pair. Checking here keeps an entry
// from failing the ledger's group it rides in (wrapRefused remains for anything missed).
func jsonbHolds(body []byte) bool {
	for i := 0; i < len(body); i++ {
		if body[i] != '\\' {
			continue
		}
		i++
		if i >= len(body) || body[i] != 'u' {
			continue // a two-character escape (json.Valid checked it)
		}
		c, ok := hex4(body, i+1)
		if !ok {
			return false
		}
		i += 4
		switch {
		case c == 0, c >= 0xDC00 && c <= 0xDFFF:
			return false
		case c >= 0xD800 && c <= 0xDBFF:
			if i+2 >= len(body) || body[i+1] != '\\' || body[i+2] != 'u' {
				return false
			}
			lo, ok := hex4(body, i+3)
			if !ok || lo < 0xDC00 || lo > 0xDFFF {
				return false
			}
			i += 6
		}
	}
	return true
}

// hex4 parses the four hex digits at b[i:].
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}
