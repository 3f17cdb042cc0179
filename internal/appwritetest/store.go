package appwritetest

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/appwrite-sync/appwrite-sync/connector"
)

// timeLayout is Appwrite's datetime format: milliseconds, numeric offset.
const timeLayout = "2006-01-02T15:04:05.000-07:00"

// seedPrefix names seeded rows: "seed-<sequence>". Their id is derived, not stored.
const seedPrefix = "seed-"

// table holds one table's rows sorted by $sequence (ascending, unique).
type table struct {
	key     connector.TableKey
	rows    []row
	byID    map[string]int64 // $id → $sequence, for rows that are not seeded
	nextSeq int64
	filler  string // seeded rows' "body" columns are prefixes of it
}

// row is kept small so a million seeded rows fit in tens of MB: a seeded row has no extra and
// renders its columns from its sequence and filler length.
type row struct {
	seq       int64
	createdAt int64 // unix ms
	updatedAt int64 // unix ms
	ext       *rowExtra
	filler    int32 // seeded rows: length of the generated "body" column
}

type rowExtra struct {
	id     string
	fields []field // sorted by name
	perms  []byte  // JSON array
	public bool    // perms grant read("any"): visible to guests
}

type field struct {
	name string
	val  json.RawMessage
}

func (r *row) id() string {
	if r.ext != nil && r.ext.id != "" {
		return r.ext.id
	}
	return seedPrefix + strconv.FormatInt(r.seq, 10)
}

func (r *row) public() bool { return r.ext != nil && r.ext.public }

func newTable(key connector.TableKey) *table {
	return &table{key: key, byID: map[string]int64{}, nextSeq: 1}
}

// index returns the position of the row with sequence seq.
func (t *table) index(seq int64) (int, bool) {
	i := sort.Search(len(t.rows), func(i int) bool { return t.rows[i].seq >= seq })
	return i, i < len(t.rows) && t.rows[i].seq == seq
}

// lowerBound is the first position whose sequence is >= seq.
func (t *table) lowerBound(seq int64) int {
	return sort.Search(len(t.rows), func(i int) bool { return t.rows[i].seq >= seq })
}

// lookup finds a row by $id.
func (t *table) lookup(id string) (int, bool) {
	if seq, ok := t.byID[id]; ok {
		return t.index(seq)
	}
	if rest, ok := strings.CutPrefix(id, seedPrefix); ok {
		if seq, err := strconv.ParseInt(rest, 10, 64); err == nil && strconv.FormatInt(seq, 10) == rest {
			if i, ok := t.index(seq); ok && (t.rows[i].ext == nil || t.rows[i].ext.id == "") {
				return i, true
			}
		}
	}
	return 0, false
}

// put creates or updates a row from a test's map. See Server.Put.
func (t *table) put(in map[string]any, now time.Time) (int, error) {
	id, _ := in["$id"].(string)
	if id == "" {
		return 0, fmt.Errorf("row needs a string $id")
	}
	updatedAt, err := timeField(in, "$updatedAt", now)
	if err != nil {
		return 0, err
	}
	var fields []field
	for k, v := range in {
		if strings.HasPrefix(k, "$") {
			continue
		}
		b, err := json.Marshal(v)
		if err != nil {
			return 0, fmt.Errorf("column %s: %w", k, err)
		}
		fields = append(fields, field{name: k, val: b})
	}
	slices.SortFunc(fields, func(a, b field) int { return strings.Compare(a.name, b.name) })

	var perms []byte
	public := false
	if p, ok := in["$permissions"]; ok {
		var list []string
		switch p := p.(type) {
		case []string:
			list = p
		case []any:
			for _, x := range p {
				s, ok := x.(string)
				if !ok {
					return 0, fmt.Errorf("$permissions: want strings, got %T", x)
				}
				list = append(list, s)
			}
		case nil:
		default:
			return 0, fmt.Errorf("$permissions: want []string, got %T", p)
		}
		if list == nil {
			list = []string{}
		}
		perms, _ = json.Marshal(list)
		public = slices.Contains(list, `read("any")`)
	}

	if i, ok := t.lookup(id); ok {
		r := &t.rows[i]
		ext := &rowExtra{id: id, fields: fields, perms: []byte("[]")}
		if r.ext != nil {
			ext.perms, ext.public = r.ext.perms, r.ext.public
		}
		if perms != nil {
			ext.perms, ext.public = perms, public
		}
		if strings.HasPrefix(id, seedPrefix) && r.ext == nil {
			ext.id = "" // still found by its derived id
		}
		r.ext, r.filler = ext, 0
		r.updatedAt = updatedAt.UnixMilli()
		if _, given := in["$createdAt"]; given {
			c, err := timeField(in, "$createdAt", now)
			if err != nil {
				return 0, err
			}
			r.createdAt = c.UnixMilli()
		}
		return i, nil
	}
	createdAt, err := timeField(in, "$createdAt", now)
	if err != nil {
		return 0, err
	}
	if perms == nil {
		perms = []byte("[]")
	}
	seq := t.nextSeq
	t.nextSeq++
	t.byID[id] = seq
	t.rows = append(t.rows, row{
		seq: seq, createdAt: createdAt.UnixMilli(), updatedAt: updatedAt.UnixMilli(),
		ext: &rowExtra{id: id, fields: fields, perms: perms, public: public},
	})
	return len(t.rows) - 1, nil
}

func timeField(in map[string]any, name string, def time.Time) (time.Time, error) {
	switch v := in[name].(type) {
	case nil:
		return def, nil
	case time.Time:
		return v, nil
	case string:
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return time.Time{}, fmt.Errorf("%s %q: want e.g. 2026-03-26T10:00:00.123+00:00", name, v)
		}
		return t, nil
	default:
		return time.Time{}, fmt.Errorf("%s: want string or time.Time, got %T", name, v)
	}
}

func (t *table) delete(id string) bool {
	i, ok := t.lookup(id)
	if !ok {
		return false
	}
	delete(t.byID, id)
	t.rows = slices.Delete(t.rows, i, i+1)
	return true
}

// seed appends n generated rows of about rowBytes bytes each.
func (t *table) seed(n, rowBytes int, now time.Time) {
	filler := rowBytes - seedOverhead
	if filler < 0 {
		filler = 0
	}
	ms := now.UnixMilli()
	t.growFiller(filler)
	t.rows = slices.Grow(t.rows, n)
	for range n {
		seq := t.nextSeq
		t.nextSeq++
		if _, taken := t.byID[seedPrefix+strconv.FormatInt(seq, 10)]; taken {
			continue
		}
		t.rows = append(t.rows, row{seq: seq, createdAt: ms, updatedAt: ms, filler: int32(filler)})
	}
}

// seedOverhead is roughly the size of a seeded row without its filler.
const seedOverhead = 250

// growFiller makes the table's filler text (the source of seeded "body" columns) at least n
// bytes long. Called under the server's write lock; render only reads it.
func (t *table) growFiller(n int) {
	const unit = "lorem ipsum dolor sit amet consectetur adipiscing elit "
	if len(t.filler) >= n {
		return
	}
	t.filler = strings.Repeat(unit, n/len(unit)+1)
}

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// renderOpts says how to write rows.
type renderOpts struct {
	legacy      bool            // $collectionId instead of $tableId
	seqAsString bool            // $sequence as a JSON string (1.9+)
	selected    map[string]bool // nil: every column
	times       *timeCache      // may be nil
}

// timeCache remembers the last datetime rendered: rows of a page (seeded ones above all) often
// share their timestamps. One per request, never shared.
type timeCache struct {
	ms  int64
	txt []byte
}

func (c *timeCache) append(b []byte, ms int64) []byte {
	if c == nil {
		return time.UnixMilli(ms).UTC().AppendFormat(b, timeLayout)
	}
	if c.txt == nil || c.ms != ms {
		c.ms, c.txt = ms, time.UnixMilli(ms).UTC().AppendFormat(c.txt[:0], timeLayout)
	}
	return append(b, c.txt...)
}

// render appends r as a JSON object.
func (t *table) render(b []byte, r *row, o renderOpts) []byte {
	b = append(b, `{"$id":`...)
	if r.ext != nil && r.ext.id != "" {
		b = appendJSONString(b, r.ext.id)
	} else {
		b = append(b, `"`+seedPrefix...)
		b = strconv.AppendInt(b, r.seq, 10)
		b = append(b, '"')
	}
	b = append(b, `,"$sequence":`...)
	if o.seqAsString {
		b = append(b, '"')
		b = strconv.AppendInt(b, r.seq, 10)
		b = append(b, '"')
	} else {
		b = strconv.AppendInt(b, r.seq, 10)
	}
	b = append(b, `,"$createdAt":"`...)
	b = o.times.append(b, r.createdAt)
	b = append(b, `","$updatedAt":"`...)
	b = o.times.append(b, r.updatedAt)
	b = append(b, `","$permissions":`...)
	if r.ext != nil {
		b = append(b, r.ext.perms...)
	} else {
		b = append(b, "[]"...)
	}
	b = append(b, `,"$databaseId":`...)
	b = appendJSONString(b, t.key.Database)
	if o.legacy {
		b = append(b, `,"$collectionId":`...)
	} else {
		b = append(b, `,"$tableId":`...)
	}
	b = appendJSONString(b, t.key.Table)
	if r.ext == nil {
		if o.selected == nil || o.selected["title"] {
			b = append(b, `,"title":"Row `...)
			b = strconv.AppendInt(b, r.seq, 10)
			b = append(b, '"')
		}
		if o.selected == nil || o.selected["body"] {
			b = append(b, `,"body":"`...)
			b = append(b, t.filler[:r.filler]...)
			b = append(b, '"')
		}
	} else {
		for _, f := range r.ext.fields {
			if o.selected != nil && !o.selected[f.name] {
				continue
			}
			b = append(b, ',')
			b = appendJSONString(b, f.name)
			b = append(b, ':')
			b = append(b, f.val...)
		}
	}
	return append(b, '}')
}
