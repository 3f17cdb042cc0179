package mapping

import (
	"strings"
	"time"

	"github.com/appwrite-sync/appwrite-sync/connector"
)

// Row is one Appwrite row as decoded by DecodeRow: JSON objects are map[string]any, arrays
// []any, numbers json.Number (kept verbatim, so big integers and decimals lose nothing).
type Row map[string]any

// ReasonNotAnObject is the permanent error's reason when a source row does not decode.
const ReasonNotAnObject = "source row is not a JSON object"

// DecodeRow decodes the JSON object of a row exactly as encoding/json's Decoder with UseNumber
// would, only faster. A body that is not exactly one JSON object is a permanent error:
// retrying cannot fix it.
func DecodeRow(raw []byte) (Row, error) {
	m, err := decodeObject(raw)
	if err != nil {
		return nil, connector.Permanent(ReasonNotAnObject, err)
	}
	return Row(m), nil
}

// DecodeRowForPostgres is DecodeRow building only the top-level members the table's warehouse
// projection reads (its columns, its where filter, $createdAt, $permissions): the others, like
// a long text no column maps, are checked but not decoded: the warehouse sink decodes every
// row it writes, on the ingest path.
func (t *Table) DecodeRowForPostgres(raw []byte) (Row, error) {
	m, err := decodeObjectKeys(raw, t.pgKeys)
	if err != nil {
		return nil, connector.Permanent(ReasonNotAnObject, err)
	}
	return Row(m), nil
}

// DecodeRowForMeili is DecodeRow building only the top-level members the table's Meilisearch
// projection reads (meilisearchKeys: its named fields, its where filter, $id, $permissions), as
// DecodeRowForPostgres does for the warehouse: the Meilisearch sink decodes every row it
// indexes. With the default field selection (every column) it decodes every member.
func (t *Table) DecodeRowForMeili(raw []byte) (Row, error) {
	m, err := decodeObjectKeys(raw, t.meiliKeys)
	if err != nil {
		return nil, connector.Permanent(ReasonNotAnObject, err)
	}
	return Row(m), nil
}

// ID returns the row's "$id" ("" when absent or not a string).
func (r Row) ID() string {
	s, _ := r["$id"].(string)
	return s
}

// CreatedAt returns the row's "$createdAt" as an instant; ok is false when it is absent or
// not an Appwrite datetime (the warehouse then stores NULL).
func (r Row) CreatedAt() (t time.Time, ok bool) { return r.timeAttr("$createdAt") }

// UpdatedAt returns the row's "$updatedAt" as an instant; ok is false when it is absent or
// not an Appwrite datetime.
func (r Row) UpdatedAt() (t time.Time, ok bool) { return r.timeAttr("$updatedAt") }

func (r Row) timeAttr(name string) (time.Time, bool) {
	s, ok := r[name].(string)
	if !ok {
		return time.Time{}, false
	}
	t, err := ParseTime(s)
	return t, err == nil
}

// ParseTime parses an Appwrite datetime ("2026-03-26T10:00:00.123+00:00"): RFC 3339 with any
// offset or "Z", optional fraction, "T" or a space between date and time. A time without an
// offset is rejected: it names no instant.
func ParseTime(s string) (time.Time, error) {
	if len(s) > 10 && s[10] == ' ' {
		s = s[:10] + "T" + s[11:]
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		if len(s) >= 19 && !strings.ContainsAny(s[19:], "Z+-") {
			return time.Time{}, errNoOffset
		}
		return time.Time{}, errNotTime
	}
	return t, nil
}
