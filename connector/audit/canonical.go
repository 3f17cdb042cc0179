package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/appwrite-sync/appwrite-sync/internal/pgerr"
	"github.com/appwrite-sync/appwrite-sync/internal/rawjson"
)

// The canonical form is rendered in the service, not by the state store: the state store keeps
// the events header and the body as text (migration 0010), and the delivery renders the form
// canonicalSQL defines (what the warehouse's Postgres renders when Verify reads it) with
// rawjson.AppendJSONB. Parsing the body as jsonb when the entry was inserted and rendering it
// again when it was read cost the state store more than the rest of the audit log's
// statements (BENCHMARKS.md, "Row history and audit log cost"). What Go does not render
// exactly (a number with an exponent beyond ±100, deep nesting) is rendered by the warehouse itself
// (renderSQL), and what the warehouse's jsonb then refuses is wrapped (BodyWrapped), as NewEntry
// wraps what it finds: a payload never holds the log back.

// storedEntry is an entry as the state store keeps it.
type storedEntry struct {
	tx                           uint64 // xid8
	seq                          int64
	receivedAt                   time.Time
	webhookID, projectID, userID *string
	events                       string // the header as received
	payload                      []byte
}

// readEntries reads up to limit entries of the log after (afterTx, afterSeq) (readSQL).
func readEntries(ctx context.Context, tx pgx.Tx, afterTx uint64, afterSeq int64, limit int) ([]storedEntry, error) {
	rows, err := tx.Query(ctx, readSQL, afterTx, afterSeq, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []storedEntry
	for rows.Next() {
		var e storedEntry
		if err := rows.Scan(&e.tx, &e.seq, &e.receivedAt, &e.webhookID, &e.projectID, &e.userID, &e.events, &e.payload); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// rendered is an entry as the warehouse gets it.
type rendered struct {
	events    []string
	event     *string // the first element; nil when there is none
	payload   []byte  // jsonb's text output of the payload (JSON text to pgx: sent as it is)
	canonical []byte  // canonicalSQL's rendering of the entry
}

// renderSQL is canonicalSQL over an entry's values, and its payload as jsonb renders it: what
// the delivery asks the warehouse for when rawjson.AppendJSONB declines the payload.
const renderSQL = `SELECT ` + canonicalSQL + `, payload::text FROM (SELECT $1::timestamptz AS received_at, ` +
	`$2::text AS webhook_id, $3::text AS project_id, $4::text AS user_id, $5::text[] AS events, $6::text AS event, ` +
	`$7::text::jsonb AS payload) e`

// render renders e for the warehouse: in Go when it can (appendCanonical), else by the
// warehouse (renderSQL), wrapping a payload the warehouse's jsonb refuses.
func (d *Deliverer) render(ctx context.Context, e storedEntry) (rendered, error) {
	r := rendered{events: splitEvents(e.events)}
	if len(r.events) > 0 {
		r.event = &r.events[0]
	}
	if c, pl, ok := appendCanonical(make([]byte, 0, len(e.payload)+len(e.events)+256), e.receivedAt, e.webhookID, e.projectID, e.userID, r.events, r.event, e.payload); ok {
		r.payload, r.canonical = pl, c
		return r, nil
	}
	payload := e.payload
	for attempt := 0; ; attempt++ {
		var canon, pl string
		err := d.wh.QueryRow(ctx, renderSQL, e.receivedAt, e.webhookID, e.projectID, e.userID, r.events, r.event, string(payload)).Scan(&canon, &pl)
		if pgerr.IsData(err) && attempt == 0 {
			// jsonb refuses what the service's checks let through (a number numeric cannot
			// hold, nesting past Postgres's stack): keep the body, wrapped.
			d.opts.Log.WithError(err).WithField("seq", e.seq).Warn("the warehouse's jsonb refused an audit entry's payload; kept wrapped ($body_base64)")
			payload = BodyWrapped(e.payload)
			continue
		}
		if err != nil {
			return r, fmt.Errorf("rendering its canonical form: %w", err)
		}
		r.canonical, r.payload = []byte(canon), []byte(pl)
		return r, nil
	}
}

// canonicalTime is canonicalSQL's to_char format of received_at in Go's layout.
const canonicalTime = "2006-01-02T15:04:05.000000Z"

// appendCanonical appends canonicalSQL's rendering of an entry: jsonb_build_array's
// "[e1, e2, ...]" with text elements escaped as jsonb escapes them, and the payload rendered as
// jsonb renders it (rawjson.AppendJSONB), which it also returns (within out). Not ok when
// rawjson.AppendJSONB declines the payload, or for a received_at whose year to_char would not
// write as four digits.
func appendCanonical(dst []byte, at time.Time, webhookID, projectID, userID *string, events []string, event *string, payload []byte) (out, rendered []byte, ok bool) {
	at = at.UTC()
	if y := at.Year(); y < 1000 || y > 9999 {
		return dst, nil, false
	}
	dst = append(dst, '[', '"')
	dst = at.AppendFormat(dst, canonicalTime)
	dst = append(dst, '"')
	for _, s := range []*string{webhookID, projectID, userID} {
		dst = appendCanonicalText(append(dst, ", "...), s)
	}
	dst = append(dst, ", ["...)
	for i, ev := range events {
		if i > 0 {
			dst = append(dst, ", "...)
		}
		dst = rawjson.AppendJSONBString(dst, ev)
	}
	dst = append(dst, "], "...)
	dst = appendCanonicalText(dst, event)
	dst = append(dst, ", "...)
	start := len(dst)
	if dst, ok = rawjson.AppendJSONB(dst, payload); !ok {
		return dst, nil, false
	}
	return append(dst, ']'), dst[start:], true
}

// appendCanonicalText is a text element of jsonb_build_array: null, or the string.
func appendCanonicalText(dst []byte, s *string) []byte {
	if s == nil {
		return append(dst, "null"...)
	}
	return rawjson.AppendJSONBString(dst, *s)
}

// ChainHash is an entry's hash: hex(SHA-256(prevHash "\n" seq "\n" canonical)).
func ChainHash(prevHash string, seq int64, canonical string) string {
	return chainHash(prevHash, seq, []byte(canonical))
}

func chainHash(prevHash string, seq int64, canonical []byte) string {
	h := sha256.New()
	h.Write([]byte(prevHash))
	h.Write([]byte{'\n'})
	h.Write(strconv.AppendInt(nil, seq, 10))
	h.Write([]byte{'\n'})
	h.Write(canonical)
	return hex.EncodeToString(h.Sum(nil))
}
