package appwrite

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"time"
)

// TimeLayout is how Appwrite writes datetimes: milliseconds and a numeric offset, never "Z"
// (2026-03-26T10:00:00.123+00:00).
const TimeLayout = "2006-01-02T15:04:05.000-07:00"

// FormatTime renders t the way Appwrite does, in UTC.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

// ListQuery selects one page of rows. The zero value asks for the first PageSize rows in
// Appwrite's default order without counting them.
type ListQuery struct {
	// AfterSequence pages by keyset: only rows with $sequence greater than it (sent as a
	// string, as Appwrite expects). Empty starts from the beginning. Use with OrderBySequence.
	AfterSequence string
	// OrderBySequence orders by $sequence ascending.
	OrderBySequence bool
	// ThroughSequence keeps rows with $sequence at most it (a window's upper bound, numeric
	// sequences only). Empty: no bound.
	ThroughSequence string
	// Descending orders by $sequence descending (finding the highest).
	Descending bool
	// UpdatedSince keeps rows with $updatedAt >= it; zero keeps all.
	UpdatedSince time.Time
	// OrderByUpdatedAt orders by $updatedAt, then $sequence, both ascending.
	OrderByUpdatedAt bool
	// Limit is the page size; 0 means Options.PageSize.
	Limit int
	// CursorAfter pages by Appwrite's cursor (rows after the row with this id). It fails with
	// ErrCursorNotFound when that row was deleted meanwhile: prefer AfterSequence. Kept for
	// the benchmark baseline.
	CursorAfter string
	// Select limits the returned columns. When set, $id, $sequence and $updatedAt are added so
	// RowMeta keeps working. Relationship columns are only returned when selected.
	Select []string
	// WithTotal asks Appwrite to count the matching rows (capped at 5000 by Appwrite). Off by
	// default (total=false, 1.8.1+), which spares the server a count per page.
	WithTotal bool
}

// query is one element of queries[]: Appwrite parses each as a JSON object.
type query struct {
	Method    string `json:"method"`
	Attribute string `json:"attribute,omitempty"`
	Values    []any  `json:"values,omitempty"`
}

// values renders q as the URL query of a list request.
func (q ListQuery) values(pageSize int) (url.Values, error) {
	if q.Limit < 0 {
		return nil, fmt.Errorf("limit %d is negative", q.Limit)
	}
	limit := q.Limit
	if limit == 0 {
		limit = pageSize
	}
	var qs []query
	if !q.UpdatedSince.IsZero() {
		qs = append(qs, query{Method: "greaterThanEqual", Attribute: "$updatedAt", Values: []any{FormatTime(q.UpdatedSince)}})
	}
	if q.AfterSequence != "" {
		qs = append(qs, query{Method: "greaterThan", Attribute: "$sequence", Values: []any{q.AfterSequence}})
	}
	if q.ThroughSequence != "" {
		qs = append(qs, query{Method: "lessThanEqual", Attribute: "$sequence", Values: []any{q.ThroughSequence}})
	}
	if q.Descending {
		qs = append(qs, query{Method: "orderDesc", Attribute: "$sequence"})
	} else if q.OrderByUpdatedAt {
		qs = append(qs,
			query{Method: "orderAsc", Attribute: "$updatedAt"},
			query{Method: "orderAsc", Attribute: "$sequence"})
	} else if q.OrderBySequence {
		qs = append(qs, query{Method: "orderAsc", Attribute: "$sequence"})
	}
	if q.CursorAfter != "" {
		qs = append(qs, query{Method: "cursorAfter", Values: []any{q.CursorAfter}})
	}
	qs = append(qs, query{Method: "limit", Values: []any{limit}})
	if len(q.Select) > 0 {
		sel := slices.Clone(q.Select)
		if !slices.Contains(sel, "*") {
			for _, k := range []string{"$id", "$sequence", "$updatedAt"} {
				if !slices.Contains(sel, k) {
					sel = append(sel, k)
				}
			}
		}
		vals := make([]any, len(sel))
		for i, s := range sel {
			vals[i] = s
		}
		qs = append(qs, query{Method: "select", Values: vals})
	}

	v := url.Values{}
	for _, x := range qs {
		b, err := json.Marshal(x)
		if err != nil {
			return nil, fmt.Errorf("encoding query %s: %w", x.Method, err)
		}
		v.Add("queries[]", string(b))
	}
	if !q.WithTotal {
		v.Set("total", "false")
	}
	return v, nil
}
