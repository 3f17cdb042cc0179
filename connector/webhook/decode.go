package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/appwrite-sync/appwrite-sync/connector"
)

func decodeErrorf(err error, format string, args ...any) *DecodeError {
	return &DecodeError{Reason: fmt.Sprintf(format, args...), Err: err}
}

// idPattern is an Appwrite id. It allows '.', which is why row events are matched against the
// payload's ids instead of being split on dots.
const idPattern = connector.IDPattern

// rowEventShape matches every event string that can be read as a row event of one of the
// three families, for some choice of ids. It only classifies (row event or not); the ids
// themselves come from the payload. The action is left open so that an unknown action on a
// row is quarantined (visible) rather than ignored (silently lost).
var rowEventShape = regexp.MustCompile(`^(?:` +
	`databases\.` + idPattern + `\.tables\.` + idPattern + `\.rows|` +
	`databases\.` + idPattern + `\.collections\.` + idPattern + `\.documents|` +
	`tablesdb\.` + idPattern + `\.tables\.` + idPattern + `\.rows` +
	`)\.` + idPattern + `\.[A-Za-z]+$`)

// family is one spelling of a row event: prefix + <db> + table + <table> + row + <row> + "." + <action>.
type family struct{ prefix, table, row string }

// families are the row event spellings Appwrite emits for the same table: TablesDB API
// (tables/rows), legacy and bulk (collections/documents), and newer servers' tablesdb.*.
var families = [...]family{
	{"databases.", ".tables.", ".rows."},
	{"databases.", ".collections.", ".documents."},
	{"tablesdb.", ".tables.", ".rows."},
}

// opOf maps an Appwrite row action to the change it makes.
func opOf(action string) (connector.Op, bool) {
	switch action {
	case "create", "update", "upsert":
		return connector.OpUpsert, true
	case "delete":
		return connector.OpDelete, true
	}
	return 0, false
}

// FirstEvent returns the first element of an X-Appwrite-Webhook-Events header: the fully
// qualified event that produced the delivery (the rest are its wildcard variants).
func FirstEvent(eventsHeader string) string {
	first, _, _ := strings.Cut(eventsHeader, ",")
	return strings.TrimSpace(first)
}

// Decode turns a delivery into a Change. eventsHeader is X-Appwrite-Webhook-Events; body is
// the raw request body, which becomes Change.Row unchanged (it is what was signed).
//
// It returns an error wrapping ErrNotRowEvent for events that are not about a row, and a
// *DecodeError for a row event it cannot read (bad JSON, missing or malformed $ fields, ids
// that disagree with the event, an unknown action, no events header).
func Decode(eventsHeader string, body []byte) (connector.Change, error) {
	event := FirstEvent(eventsHeader)
	if event == "" {
		return connector.Change{}, decodeErrorf(ErrNoEvents,
			"the X-Appwrite-Webhook-Events header is missing or empty, so the change cannot be identified")
	}
	if !maybeRowEvent(event) {
		return connector.Change{}, notRowEvent(event)
	}
	ch, err := decodeRow(event, body)
	if err != nil && !rowEventShape.MatchString(event) {
		// Only now is the exact classification needed: a row event that decodes is
		// row-shaped by construction (valid ids, known action, one family's exact form), so
		// the regular expression stays off the hot path.
		return connector.Change{}, notRowEvent(event)
	}
	return ch, err
}

func notRowEvent(event string) error { return fmt.Errorf("%w: %s", ErrNotRowEvent, event) }

// maybeRowEvent is a cheap necessary condition for rowEventShape: it turns away users,
// buckets, functions and other families without parsing anything.
func maybeRowEvent(event string) bool {
	return (strings.HasPrefix(event, "databases.") || strings.HasPrefix(event, "tablesdb.")) &&
		(strings.Contains(event, ".rows.") || strings.Contains(event, ".documents."))
}

// decodeRow decodes a delivery whose event may be a row event; any failure is a
// *DecodeError.
func decodeRow(event string, body []byte) (connector.Change, error) {
	action := event[strings.LastIndexByte(event, '.')+1:]
	op, ok := opOf(action)
	if !ok {
		return connector.Change{}, decodeErrorf(nil,
			"row event %q has unknown action %q (want create, update, upsert or delete)", event, action)
	}
	p, err := readPayload(body)
	if errors.Is(err, connector.ErrInvalidUTF8) {
		return connector.Change{}, decodeErrorf(err, "payload of %s: %v; the state store cannot hold it, and Appwrite itself "+
			"never sends such a body (PHP's json_encode refuses invalid UTF-8)", event, err)
	}
	if err != nil {
		return connector.Change{}, decodeErrorf(err, "payload of %s is not a JSON row object: %v", event, err)
	}
	if p.ID == "" {
		return connector.Change{}, decodeErrorf(nil, "payload of %s has no $id", event)
	}
	if !connector.ValidID(p.ID) {
		return connector.Change{}, decodeErrorf(nil, "payload of %s has $id %.300q, which is not an Appwrite id "+
			"(1 to 255 of A-Z a-z 0-9 . _ -, not starting with . _ or -)", event, p.ID)
	}
	table := p.TableID
	if p.CollectionID != "" {
		if table != "" && table != p.CollectionID {
			return connector.Change{}, decodeErrorf(nil,
				"payload of %s has $tableId %q and $collectionId %q; they must be equal", event, p.TableID, p.CollectionID)
		}
		table = p.CollectionID
	}
	db, table, reason := matchEvent(event, action, p.DatabaseID, table, p.ID)
	if reason != "" {
		return connector.Change{}, decodeErrorf(nil, "%s", reason)
	}
	if p.UpdatedAt == "" {
		return connector.Change{}, decodeErrorf(nil, "payload of %s has no $updatedAt", event)
	}
	updated, err := time.Parse(time.RFC3339Nano, p.UpdatedAt)
	if err != nil {
		return connector.Change{}, decodeErrorf(err,
			"payload of %s has $updatedAt %q, want a datetime like 2026-03-26T10:00:00.123+00:00", event, p.UpdatedAt)
	}
	return connector.Change{
		Key:       connector.TableKey{Database: db, Table: table},
		RowID:     p.ID,
		Op:        op,
		UpdatedAt: updated.UTC(),
		Sequence:  p.Sequence,
		Action:    action,
		Event:     event,
		Row:       json.RawMessage(body),
		Hash:      p.Hash,
	}, nil
}

// matchEvent checks that event is exactly the row event of one family for the payload's ids
// and returns the database and table ids, filling in those the payload left out (bulk and
// transaction payloads may lack $databaseId). A non-empty reason explains a mismatch.
func matchEvent(event, action, db, table, row string) (string, string, string) {
	ambiguous := false
	for _, f := range families {
		mid, ok := strings.CutPrefix(event, f.prefix)
		if !ok {
			continue
		}
		if mid, ok = strings.CutSuffix(mid, action); !ok {
			continue
		}
		if mid, ok = strings.CutSuffix(mid, "."); !ok {
			continue
		}
		if mid, ok = strings.CutSuffix(mid, row); !ok {
			continue
		}
		if mid, ok = strings.CutSuffix(mid, f.row); !ok {
			continue
		}
		// mid is now db + f.table + table.
		gotDB, gotTable, found := splitPair(mid, f.table, db, table)
		if found && connector.ValidID(gotDB) && connector.ValidID(gotTable) {
			return gotDB, gotTable, ""
		}
		if db == "" && table == "" && strings.Count(mid, f.table) > 1 {
			ambiguous = true
		}
	}
	if ambiguous {
		return "", "", fmt.Sprintf("event %s names the row %q but the payload has neither $databaseId nor "+
			"$tableId/$collectionId, and the ids contain dots in a way that makes the database and table ambiguous", event, row)
	}
	return "", "", fmt.Sprintf("event %s does not match the payload (database %s, table %s, $id %q): "+
		"the ids in the payload must be the ones in the event", event, orAbsent(db), orAbsent(table), row)
}

// splitPair splits s = db + sep + table, using whichever of db and table is known. It cuts
// piece by piece rather than comparing with db+sep+table to stay allocation-free.
func splitPair(s, sep, db, table string) (string, string, bool) {
	switch {
	case db != "":
		rest, ok := strings.CutPrefix(s, db)
		if rest, ok2 := strings.CutPrefix(rest, sep); ok && ok2 && (table == "" || rest == table) {
			return db, rest, true
		}
		return "", "", false
	case table != "":
		rest, ok := strings.CutSuffix(s, table)
		if rest, ok2 := strings.CutSuffix(rest, sep); ok && ok2 {
			return rest, table, true
		}
		return "", "", false
	}
	if strings.Count(s, sep) != 1 {
		return "", "", false
	}
	gotDB, gotTable, _ := strings.Cut(s, sep)
	return gotDB, gotTable, true
}

func orAbsent(id string) string {
	if id == "" {
		return "absent"
	}
	return fmt.Sprintf("%q", id)
}
