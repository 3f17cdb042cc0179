package connector

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/appwrite-sync/appwrite-sync/internal/canonjson"
)

// Op is what a change does to a row.
type Op int8

const (
	// OpUpsert writes the row (Appwrite create, update, upsert).
	OpUpsert Op = 1
	// OpDelete removes the row. At the same $updatedAt a delete orders after an upsert.
	OpDelete Op = 2
)

func (o Op) String() string {
	switch o {
	case OpUpsert:
		return "upsert"
	case OpDelete:
		return "delete"
	default:
		return fmt.Sprintf("op(%d)", int8(o))
	}
}

// TableKey names one Appwrite table: database id and table id (== legacy collection id).
type TableKey struct {
	Database string
	Table    string
}

// String renders the key as "database/table", the form used in the admin API and the ledger.
// Appwrite ids never contain '/', so the form is unambiguous.
func (k TableKey) String() string { return k.Database + "/" + k.Table }

// ParseTableKey parses "database/table".
func ParseTableKey(s string) (TableKey, error) {
	db, tbl, ok := strings.Cut(s, "/")
	if !ok || db == "" || tbl == "" || strings.Contains(tbl, "/") {
		return TableKey{}, fmt.Errorf("table %q: want \"database/table\", e.g. \"main/posts\"", s)
	}
	return TableKey{Database: db, Table: tbl}, nil
}

// Version orders the changes of one row: first $updatedAt (millisecond instants), then the
// op (a delete wins over an upsert at the same instant, because a delete payload carries the
// row's unchanged $updatedAt), then Hash, a deterministic tie-break between two different
// contents written at the same instant (Appwrite lets API keys set $updatedAt by hand).
//
// Compare is the whole order between webhook versions. A version read from the REST API
// (Change.Authoritative) overrides the hash at its ($updatedAt, op): the ledger decides those
// ties (package ledger), and the sinks follow the ledger's order of a row's versions (its seq)
// rather than comparing hashes.
type Version struct {
	UpdatedAt time.Time
	Op        Op
	Hash      []byte
}

// Compare returns -1, 0 or +1 as v orders before, equal to or after w.
func (v Version) Compare(w Version) int {
	if c := v.UpdatedAt.Compare(w.UpdatedAt); c != 0 {
		return c
	}
	if v.Op != w.Op {
		if v.Op < w.Op {
			return -1
		}
		return 1
	}
	return bytes.Compare(v.Hash, w.Hash)
}

// Change is one row event, from a webhook or from a backfill scan.
type Change struct {
	Key       TableKey
	RowID     string
	Op        Op
	UpdatedAt time.Time
	// Sequence is Appwrite's $sequence, opaque (number on 1.8, string on 1.9+, UUIDv7 on MongoDB).
	Sequence string
	// Action is the Appwrite action that produced the change: create, update, upsert, delete
	// (or "backfill" for rows read from the REST API).
	Action string
	// Event is the fully qualified Appwrite event (first element of X-Appwrite-Webhook-Events);
	// empty for rows read from the REST API.
	Event string
	// Actor is the X-Appwrite-Webhook-User-Id of the delivery: the user whose request wrote the
	// row; empty for API-key writes and for rows read from the REST API.
	Actor string
	// Source says how the change reached appwrite-sync (SourceWebhook, SourceBackfill,
	// SourceReconcile, SourceReplay). Empty means SourceWebhook, or SourceBackfill when
	// Authoritative (SourceOf). Row history keeps it per version.
	Source string
	// Row is the source row exactly as received (the whole JSON object).
	Row json.RawMessage
	// Hash is ContentHash(Row) when whoever built the change computed it already (the webhook
	// decoder does, as its validation of the body); nil lets the recorder compute it.
	Hash []byte
	// Authoritative marks a row read from Appwrite's REST API (backfill, reconcile): what
	// Appwrite holds for this $updatedAt, where a webhook may be a late or replayed delivery.
	// It wins a tie against any other content at the same $updatedAt and op, and it is not
	// refused below the tombstone horizon (see package ledger).
	Authoritative bool
	// Audit is the audit log entry of the delivery that carried the change (package
	// connector/audit), or nil when the delivery is not audited: the recorder commits it in
	// the same transaction as the change, so the change is acknowledged only with its entry.
	Audit *AuditEntry
}

// AuditEntry is one audited delivery as the state store keeps it (package connector/audit
// defines its canonical form and chain).
type AuditEntry struct {
	ReceivedAt time.Time // UTC, whole microseconds (what timestamptz keeps)
	// WebhookID, ProjectID and UserID are the headers; "" is stored as NULL.
	WebhookID, ProjectID, UserID string
	// Events is the X-Appwrite-Webhook-Events header as received.
	Events string
	// Payload is the body when jsonb can hold it, else the body wrapped (audit.BodyWrapped).
	Payload []byte
	// Digest identifies a byte-identical redelivery (audit.Digest): it is recorded once.
	Digest []byte
}

// Sources of a change (Change.Source): the values of the source column of <table>_history.
const (
	SourceWebhook   = "webhook"   // a verified webhook (also when it waited in the outage spool)
	SourceBackfill  = "backfill"  // read from the REST API by a backfill started by a person
	SourceReconcile = "reconcile" // read from the REST API by a scheduled or automatic reconcile
	SourceReplay    = "replay"    // a quarantined request replayed through the admin API
)

// SourceOf returns ch.Source, defaulted: SourceBackfill for a row read from the REST API,
// SourceWebhook otherwise.
func SourceOf(ch *Change) string {
	switch {
	case ch.Source != "":
		return ch.Source
	case ch.Authoritative:
		return SourceBackfill
	}
	return SourceWebhook
}

// volatileKeys are top-level payload keys that differ between deliveries of the same row
// version depending on which API wrote it (TablesDB vs legacy, bulk, transactions). They are
// left out of the content hash so the same version hashes the same whichever way it arrived.
var volatileKeys = map[string]bool{
	"$databaseId": true, "$tableId": true, "$collectionId": true,
	"$collection": true, "$tenant": true, "$table": true,
}

// ContentHash returns a deterministic digest of a row's content: the JSON object with the
// volatile routing keys removed, canonicalised (sorted keys, numbers kept verbatim). It is the
// final tie-break of Version.
//
// It accepts exactly the rows that are one valid JSON object (json.Valid, and an object) in
// valid UTF-8, so it doubles as the validation of a webhook body (a fuzz test holds it to
// encoding/json). encoding/json would take invalid UTF-8 and replace it; the state store
// refuses it (ErrInvalidUTF8).
func ContentHash(row json.RawMessage) ([]byte, error) {
	if !utf8.Valid(row) {
		return nil, invalidUTF8(row)
	}
	var sum [sha256.Size]byte
	if err := canonjson.Object(row, isVolatile, func(c []byte) { sum = sha256.Sum256(c) }); err != nil {
		return nil, fmt.Errorf("row is %w", err) // "row is not a JSON object: ..."
	}
	return sum[:16], nil
}

func isVolatile(key []byte) bool { return len(key) > 0 && key[0] == '$' && volatileKeys[string(key)] }

// ErrInvalidUTF8: a row that is not valid UTF-8. Appwrite never sends one (PHP's json_encode
// fails on it), and Postgres refuses to store one in a UTF-8 database.
var ErrInvalidUTF8 = errors.New("row is not valid UTF-8")

// invalidUTF8 is ErrInvalidUTF8 with the offset of the first bad byte of b.
func invalidUTF8(b []byte) error {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return fmt.Errorf("%w (byte %d is 0x%02x)", ErrInvalidUTF8, i, b[i])
		}
		i += n
	}
	return ErrInvalidUTF8
}
