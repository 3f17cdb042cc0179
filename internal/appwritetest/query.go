package appwritetest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// listQuery is a parsed queries[] list.
type listQuery struct {
	filters  []filter
	orders   []order
	cursor   string // cursorAfter row id
	hasLimit bool
	limit    int
	offset   int
	selected map[string]bool // nil: all columns
	// bounds on $sequence from the filters, for the binary search.
	minSeq, maxSeq int64
}

type filter struct {
	method string
	attr   string
	// One of these holds the values, by attr.
	ints  []int64  // $sequence
	times []int64  // $updatedAt, $createdAt (unix ms)
	strs  []string // $id
}

type order struct {
	attr string
	desc bool
}

// queryError is a 400 answer.
type queryError struct {
	typ string
	msg string
}

func (e *queryError) Error() string { return e.msg }

func invalid(format string, a ...any) error {
	return &queryError{typ: "general_query_invalid", msg: "Invalid query: " + fmt.Sprintf(format, a...)}
}

var sortable = map[string]bool{"$sequence": true, "$updatedAt": true, "$createdAt": true, "$id": true}

// parseQueries parses Appwrite's JSON queries (method, attribute, values).
func parseQueries(raw []string) (*listQuery, error) {
	if len(raw) > 100 {
		return nil, &queryError{typ: "general_argument_invalid",
			msg: "Invalid `queries` param: Value must a valid array no longer than 100 items and Value must be a valid string and no longer than 4096 chars"}
	}
	q := &listQuery{limit: 25, minSeq: math.MinInt64, maxSeq: math.MaxInt64}
	for _, s := range raw {
		if len(s) > 4096 {
			return nil, &queryError{typ: "general_argument_invalid",
				msg: "Invalid `queries` param: Value must a valid array no longer than 100 items and Value must be a valid string and no longer than 4096 chars"}
		}
		var m struct {
			Method    string            `json:"method"`
			Attribute string            `json:"attribute"`
			Values    []json.RawMessage `json:"values"`
		}
		dec := json.NewDecoder(strings.NewReader(s))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil {
			return nil, invalid("Syntax error: %s", s)
		}
		switch m.Method {
		case "limit", "offset":
			n, err := intValue(m.Values)
			if err != nil || n < 0 {
				return nil, invalid("Invalid %s: %s", m.Method, s)
			}
			if m.Method == "limit" {
				q.limit, q.hasLimit = int(n), true
			} else {
				q.offset = int(n)
			}
		case "orderAsc", "orderDesc":
			if !sortable[m.Attribute] {
				return nil, invalid("Attribute not found in schema: %s (appwritetest orders by $sequence, $updatedAt, $createdAt, $id)", m.Attribute)
			}
			q.orders = append(q.orders, order{attr: m.Attribute, desc: m.Method == "orderDesc"})
		case "cursorAfter":
			if len(m.Values) != 1 {
				return nil, invalid("Cursor must contain exactly one value")
			}
			var id string
			if err := json.Unmarshal(m.Values[0], &id); err != nil || id == "" {
				return nil, invalid("Cursor must be a row id")
			}
			q.cursor = id
		case "select":
			q.selected = map[string]bool{}
			for _, v := range m.Values {
				var name string
				if err := json.Unmarshal(v, &name); err != nil {
					return nil, invalid("Select values must be strings")
				}
				if name == "*" {
					q.selected = nil
					break
				}
				q.selected[name] = true
			}
		case "equal", "notEqual", "greaterThan", "greaterThanEqual", "lessThan", "lessThanEqual":
			f, err := parseFilter(m.Method, m.Attribute, m.Values)
			if err != nil {
				return nil, err
			}
			q.filters = append(q.filters, f)
			if f.attr == "$sequence" && len(f.ints) == 1 {
				switch f.method {
				case "greaterThan":
					q.minSeq = max(q.minSeq, f.ints[0]+1)
				case "greaterThanEqual":
					q.minSeq = max(q.minSeq, f.ints[0])
				case "lessThan":
					q.maxSeq = min(q.maxSeq, f.ints[0]-1)
				case "lessThanEqual":
					q.maxSeq = min(q.maxSeq, f.ints[0])
				}
			}
		default:
			return nil, invalid("Invalid method: %s (not supported by appwritetest)", m.Method)
		}
	}
	return q, nil
}

func intValue(vals []json.RawMessage) (int64, error) {
	if len(vals) != 1 {
		return 0, fmt.Errorf("want one value")
	}
	var n json.Number
	if err := json.Unmarshal(vals[0], &n); err != nil {
		return 0, err
	}
	return strconv.ParseInt(n.String(), 10, 64)
}

func parseFilter(method, attr string, vals []json.RawMessage) (filter, error) {
	f := filter{method: method, attr: attr}
	if len(vals) == 0 {
		return f, invalid("%s queries require at least one value", method)
	}
	if method != "equal" && method != "notEqual" && len(vals) != 1 {
		return f, invalid("%s queries require exactly one value", method)
	}
	for _, v := range vals {
		v = bytes.TrimSpace(v)
		switch attr {
		case "$sequence":
			// Appwrite expects strings ("1234"); a number is tolerated.
			var s string
			if len(v) > 0 && v[0] == '"' {
				_ = json.Unmarshal(v, &s)
			} else {
				s = string(v)
			}
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return f, invalid("Query value is invalid for attribute \"$sequence\": %s", v)
			}
			f.ints = append(f.ints, n)
		case "$updatedAt", "$createdAt":
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return f, invalid("Query value is invalid for attribute %q: %s", attr, v)
			}
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return f, invalid("Query value is invalid for attribute %q: %s", attr, s)
			}
			f.times = append(f.times, t.UnixMilli())
		case "$id":
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return f, invalid("Query value is invalid for attribute \"$id\": %s", v)
			}
			f.strs = append(f.strs, s)
		default:
			return f, invalid("Attribute not found in schema: %s (appwritetest filters on $sequence, $updatedAt, $createdAt, $id)", attr)
		}
	}
	return f, nil
}

// match reports whether r passes every filter.
func (q *listQuery) match(r *row) bool {
	for i := range q.filters {
		if !q.filters[i].match(r) {
			return false
		}
	}
	return true
}

func (f *filter) match(r *row) bool {
	var n int
	for i := 0; i < max(len(f.ints), len(f.times), len(f.strs)); i++ {
		var c int
		switch f.attr {
		case "$sequence":
			c = cmp64(r.seq, f.ints[i])
		case "$updatedAt":
			c = cmp64(r.updatedAt, f.times[i])
		case "$createdAt":
			c = cmp64(r.createdAt, f.times[i])
		case "$id":
			c = strings.Compare(r.id(), f.strs[i])
		}
		switch f.method {
		case "equal":
			if c == 0 {
				return true
			}
		case "notEqual":
			if c == 0 {
				return false
			}
			n++
		case "greaterThan":
			return c > 0
		case "greaterThanEqual":
			return c >= 0
		case "lessThan":
			return c < 0
		case "lessThanEqual":
			return c <= 0
		}
	}
	return f.method == "notEqual"
}

func cmp64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// natural reports whether the order is $sequence ascending (also the default), so rows can be
// walked in storage order from a binary-searched start.
func (q *listQuery) natural() bool {
	if len(q.orders) == 0 {
		return true
	}
	o := q.orders[0] // only the first order decides the walk
	return o.attr == "$sequence" && !o.desc
}

// compare orders two rows by the query's orders, then by $sequence ascending (the tie-break
// Appwrite's database layer adds).
func (q *listQuery) compare(a, b *row) int {
	for _, o := range q.orders {
		var c int
		switch o.attr {
		case "$sequence":
			c = cmp64(a.seq, b.seq)
		case "$updatedAt":
			c = cmp64(a.updatedAt, b.updatedAt)
		case "$createdAt":
			c = cmp64(a.createdAt, b.createdAt)
		case "$id":
			c = strings.Compare(a.id(), b.id())
		}
		if o.desc {
			c = -c
		}
		if c != 0 {
			return c
		}
	}
	return cmp64(a.seq, b.seq)
}

// run selects the page: positions into t.rows, and the capped count when count is set.
// cursor is the position of the cursorAfter row, or -1.
func (q *listQuery) run(t *table, cursor int, guest, count bool) (page []int, total int64) {
	visible := func(r *row) bool { return (!guest || r.public()) && q.match(r) }
	start := t.lowerBound(q.minSeq)
	if count {
		for i := start; i < len(t.rows) && t.rows[i].seq <= q.maxSeq && total < maxTotal; i++ {
			if visible(&t.rows[i]) {
				total++
			}
		}
	}
	if q.limit == 0 {
		return nil, total
	}
	skipped := 0
	if q.natural() {
		if cursor >= 0 {
			start = max(start, cursor+1)
		}
		for i := start; i < len(t.rows) && t.rows[i].seq <= q.maxSeq; i++ {
			if !visible(&t.rows[i]) {
				continue
			}
			if skipped < q.offset {
				skipped++
				continue
			}
			page = append(page, i)
			if len(page) == q.limit {
				break
			}
		}
		return page, total
	}
	var all []int
	for i := start; i < len(t.rows) && t.rows[i].seq <= q.maxSeq; i++ {
		r := &t.rows[i]
		if !visible(r) || (cursor >= 0 && q.compare(r, &t.rows[cursor]) <= 0) {
			continue
		}
		all = append(all, i)
	}
	slices.SortFunc(all, func(a, b int) int { return q.compare(&t.rows[a], &t.rows[b]) })
	if q.offset >= len(all) {
		return nil, total
	}
	all = all[q.offset:]
	if len(all) > q.limit {
		all = all[:q.limit]
	}
	return all, total
}

// maxTotal is where Appwrite stops counting (APP_LIMIT_COUNT).
const maxTotal = 5000
