package appwrite

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/internal/rawjson"
)

// Page is one page of a list: the rows exactly as Appwrite sent them.
type Page struct {
	Rows []json.RawMessage
	// Total is Appwrite's count of matching rows (capped at 5000 by Appwrite), or -1 when the
	// query did not ask for it (ListQuery.WithTotal false).
	Total int64
	// Through is the $sequence this page covers up to: a scan resumed after it misses
	// nothing before it. Set by Scan and ScanParallel (a window page may hold no rows).
	Through string
}

// LastSequence returns the $sequence of the page's last row: the keyset of the next page.
func (p Page) LastSequence() (string, error) {
	if len(p.Rows) == 0 {
		return "", errors.New("empty page has no last sequence")
	}
	return RowSequence(p.Rows[len(p.Rows)-1])
}

// ListRows lists one page of the table's rows.
func (c *Client) ListRows(ctx context.Context, key connector.TableKey, q ListQuery) (Page, error) {
	op := "list rows " + key.String()
	if err := checkKey(key); err != nil {
		return Page{}, fmt.Errorf("appwrite: %s: %w", op, err)
	}
	v, err := q.values(c.opts.PageSize)
	if err != nil {
		return Page{}, fmt.Errorf("appwrite: %s: %w", op, err)
	}
	body, err := c.dataGet(ctx, op, key, "", v)
	if err != nil {
		return Page{}, err
	}
	p, err := splitPage(body)
	if err != nil {
		return Page{}, fmt.Errorf("appwrite: %s: %w (starts %q)", op, err, snippet(body))
	}
	if !q.WithTotal {
		p.Total = -1
	}
	return p, nil
}

// GetRow reads one row. A missing row is an error matching ErrRowNotFound.
func (c *Client) GetRow(ctx context.Context, key connector.TableKey, rowID string) (json.RawMessage, error) {
	op := fmt.Sprintf("get row %s/%s", key, rowID)
	if err := checkKey(key); err != nil {
		return nil, fmt.Errorf("appwrite: %s: %w", op, err)
	}
	if rowID == "" {
		return nil, fmt.Errorf("appwrite: %s: empty row id", op)
	}
	body, err := c.dataGet(ctx, op, key, rowID, nil)
	if err != nil {
		return nil, err
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' || !json.Valid(body) {
		return nil, fmt.Errorf("appwrite: %s: response is not a JSON object (starts %q)", op, snippet(body))
	}
	return json.RawMessage(body), nil
}

// Scan pages through the rows selected by q in $sequence order, by keyset (greaterThan
// $sequence), calling fn once per non-empty page. A row deleted between pages cannot break
// it, and every row present for the whole scan is seen exactly once. q.AfterSequence resumes
// after a checkpoint; q.UpdatedSince, q.Select and q.Limit apply to every page; q.WithTotal
// counts on the first page only. fn may end the scan by returning an error, which Scan
// returns as is (ErrStopScan ends it with nil).
func (c *Client) Scan(ctx context.Context, key connector.TableKey, q ListQuery, fn func(Page) error) error {
	if q.CursorAfter != "" || q.OrderByUpdatedAt {
		return fmt.Errorf("appwrite: scan %s: CursorAfter and OrderByUpdatedAt cannot be used: Scan pages by $sequence", key)
	}
	q.OrderBySequence = true
	for {
		p, err := c.ListRows(ctx, key, q)
		if err != nil {
			return err
		}
		if len(p.Rows) == 0 {
			return nil
		}
		last, err := p.LastSequence()
		if err != nil {
			return fmt.Errorf("appwrite: scan %s: %w", key, err)
		}
		if last == q.AfterSequence {
			return fmt.Errorf("appwrite: scan %s: keyset did not advance past $sequence %s", key, last)
		}
		p.Through = last
		if err := fn(p); err != nil {
			if errors.Is(err, ErrStopScan) {
				return nil
			}
			return err
		}
		q.AfterSequence = last
		q.WithTotal = false
	}
}

// ScanParallel is Scan with up to parallel requests in flight, for a server whose round
// trips, not its throughput, bound a scan. It needs numeric $sequence values (Appwrite 1.8 and
// SQL backends) and no $updatedAt filter: it splits the range from q.AfterSequence to the
// highest $sequence into windows of Limit (or PageSize) consecutive values, each of which
// holds at most that many rows, so one request per window reads it completely whatever the
// gaps. fn still gets the pages in $sequence order (a window's page may be empty; its Through
// is the window's end). Rows created after the scan began are read by a plain Scan from the
// highest $sequence on. Otherwise, and for tables of a few pages, it is Scan.
func (c *Client) ScanParallel(ctx context.Context, key connector.TableKey, q ListQuery, parallel int, fn func(Page) error) error {
	width := q.Limit
	if width == 0 {
		width = c.opts.PageSize
	}
	start, numeric := int64(0), true
	if q.AfterSequence != "" {
		var err error
		start, err = strconv.ParseInt(q.AfterSequence, 10, 64)
		numeric = err == nil
	}
	if parallel <= 1 || !q.UpdatedSince.IsZero() || !numeric {
		return c.Scan(ctx, key, q, fn)
	}
	top, err := c.ListRows(ctx, key, ListQuery{Descending: true, Limit: 1, Select: []string{"$id"}})
	if err != nil {
		return err
	}
	var end int64
	if len(top.Rows) == 1 {
		seq, err := RowSequence(top.Rows[0])
		if err != nil {
			return fmt.Errorf("appwrite: scan %s: %w", key, err)
		}
		if end, err = strconv.ParseInt(seq, 10, 64); err != nil {
			return c.Scan(ctx, key, q, fn) // opaque sequences (UUIDv7): keyset only
		}
	}
	windows := (end - start + int64(width) - 1) / int64(width)
	if windows < int64(2*parallel) {
		return c.Scan(ctx, key, q, fn)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		page Page
		err  error
	}
	// One channel per window, in order; at most parallel windows are fetched ahead of fn.
	pending := make(chan chan result, parallel)
	base := q // the windows' query; q itself moves on to the keyset tail below
	go func() {
		defer close(pending)
		for w := int64(0); w < windows; w++ {
			lo, hi := start+w*int64(width), min(start+(w+1)*int64(width), end)
			ch := make(chan result, 1)
			select {
			case pending <- ch:
			case <-wctx.Done():
				return
			}
			go func() {
				wq := base
				wq.AfterSequence, wq.ThroughSequence = strconv.FormatInt(lo, 10), strconv.FormatInt(hi, 10)
				wq.OrderBySequence, wq.Limit, wq.WithTotal = true, width, false
				if lo == 0 {
					wq.AfterSequence = "" // sequences start at 1; "greater than 0" is the same
				}
				p, err := c.ListRows(wctx, key, wq)
				p.Through = wq.ThroughSequence
				ch <- result{p, err}
			}()
		}
	}()
	through, seen, delivered := end, 0, int64(0)
	for ch := range pending {
		r := <-ch
		if r.err != nil {
			return r.err
		}
		if err := fn(r.page); err != nil {
			if errors.Is(err, ErrStopScan) {
				return nil
			}
			return err
		}
		seen += len(r.page.Rows)
		delivered++
		// Mostly empty windows (a table that lost most of its rows): one request per page of
		// rows is cheaper than one per window; continue by keyset from here.
		if delivered >= int64(2*parallel) && seen < int(delivered)*width/4 {
			through, _ = strconv.ParseInt(r.page.Through, 10, 64)
			cancel()
			break
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	q.AfterSequence, q.WithTotal = strconv.FormatInt(through, 10), false
	return c.Scan(ctx, key, q, fn)
}

// dataGet GETs a list (rowID empty) or one row, from TablesDB or, on servers without it, from
// the legacy Databases API. Which one the server speaks is learnt once per client.
func (c *Client) dataGet(ctx context.Context, op string, key connector.TableKey, rowID string, v url.Values) ([]byte, error) {
	tables := &request{op: op, query: v, family: familyTables, key: key,
		path: "/tablesdb/" + url.PathEscape(key.Database) + "/tables/" + url.PathEscape(key.Table) + "/rows"}
	legacy := &request{op: op, query: v, family: familyLegacy, key: key,
		path: "/databases/" + url.PathEscape(key.Database) + "/collections/" + url.PathEscape(key.Table) + "/documents"}
	if rowID != "" {
		tables.path += "/" + url.PathEscape(rowID)
		legacy.path += "/" + url.PathEscape(rowID)
	}
	switch c.api.Load() {
	case apiTables:
		return c.do(ctx, tables)
	case apiLegacy:
		return c.do(ctx, legacy)
	}
	body, err := c.do(ctx, tables)
	if !routeMissing(err) {
		if provesRoute(err) {
			c.api.CompareAndSwap(apiUnknown, apiTables)
		}
		return body, err
	}
	body, lerr := c.do(ctx, legacy)
	if routeMissing(lerr) {
		return nil, fmt.Errorf("appwrite: %s: neither the TablesDB nor the legacy Databases route exists at %s: "+
			"check appwrite.endpoint (it normally ends in /v1, e.g. https://cloud.appwrite.io/v1): %w", op, c.endpoint, err)
	}
	if provesRoute(lerr) && c.api.CompareAndSwap(apiUnknown, apiLegacy) {
		c.log.WithFields(logrus.Fields{"endpoint": c.endpoint}).
			Info("appwrite has no TablesDB API (server older than 1.8): using the legacy Databases API")
	}
	return body, lerr
}

// provesRoute reports whether an answer shows the route exists: a success, or an error about
// a resource or a query (which Appwrite checks after matching the route and the key).
func provesRoute(err error) bool {
	if err == nil {
		return true
	}
	var ae *APIError
	if !errors.As(err, &ae) || ae.Type == "" || ae.Status >= 500 || ae.Status == http.StatusTooManyRequests {
		return false
	}
	return !ae.unauthorized()
}

func checkKey(k connector.TableKey) error {
	if k.Database == "" || k.Table == "" {
		return fmt.Errorf("table key %q: want database and table ids", k.String())
	}
	return nil
}

// splitPage cuts a list response into its rows without decoding them: each row is parsed in
// full later, when it is hashed, so encoding/json validating and copying the whole page first
// would parse every row twice.
func splitPage(body []byte) (Page, error) {
	p := Page{}
	var rows, docs []json.RawMessage
	seenRows, seenDocs := false, false
	err := rawjson.EachMember(body, func(key, value []byte) error {
		switch string(key) {
		case "total":
			n, err := strconv.ParseInt(string(value), 10, 64)
			if err != nil {
				return fmt.Errorf("\"total\" is not an integer: %.40s", value)
			}
			p.Total = n
		case "rows", "documents":
			var list []json.RawMessage
			if err := rawjson.EachElement(value, func(v []byte) error {
				if v[0] != '{' {
					return fmt.Errorf("%q holds a non-object: %.40s", key, v)
				}
				list = append(list, json.RawMessage(v))
				return nil
			}); err != nil {
				return err
			}
			if list == nil {
				list = []json.RawMessage{}
			}
			if string(key) == "rows" {
				rows, seenRows = list, true
			} else {
				docs, seenDocs = list, true
			}
		}
		return nil
	})
	if err != nil {
		return Page{}, fmt.Errorf("decoding the response: %w", err)
	}
	switch {
	case seenRows:
		p.Rows = rows
	case seenDocs:
		p.Rows = docs
	default:
		return Page{}, errors.New(`response has neither "rows" nor "documents"`)
	}
	return p, nil
}

// topLevel reads the raw values of a row's $id, $updatedAt and $sequence.
func topLevel(row json.RawMessage) (id, updatedAt, seq []byte, err error) {
	err = rawjson.EachMember(row, func(key, value []byte) error {
		switch string(key) {
		case "$id":
			id = value
		case "$updatedAt":
			updatedAt = value
		case "$sequence":
			seq = value
		}
		return nil
	})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("row is not a JSON object: %w", err)
	}
	return id, updatedAt, seq, nil
}

// RowSequence returns the row's $sequence as a string: a JSON number (Appwrite 1.8) is
// returned as written, a JSON string (1.9+, UUIDv7 on MongoDB) unquoted. It is opaque: compare
// it only for equality, and give it back to Appwrite in ListQuery.AfterSequence.
func RowSequence(row json.RawMessage) (string, error) {
	_, _, seq, err := topLevel(row)
	if err != nil {
		return "", err
	}
	return parseSequence(seq)
}

func parseSequence(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return "", errors.New("row has no $sequence")
	case raw[0] == '"':
		s, _, err := rawjson.String(raw)
		if err != nil {
			return "", fmt.Errorf("$sequence: %w", err)
		}
		if s == "" {
			return "", errors.New("row has an empty $sequence")
		}
		return s, nil
	case raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9'):
		return string(raw), nil
	}
	return "", fmt.Errorf("$sequence is neither a number nor a string: %.40s", raw)
}

// RowMeta returns a row's $id, $updatedAt (parsed with any offset) and $sequence.
func RowMeta(row json.RawMessage) (id string, updatedAt time.Time, seq string, err error) {
	rawID, rawUA, rawSeq, err := topLevel(row)
	if err != nil {
		return "", time.Time{}, "", err
	}
	id, _, err = rawjson.String(rawID)
	if err != nil || id == "" {
		return "", time.Time{}, "", errors.New("row has no $id")
	}
	ua, ok, err := rawjson.String(rawUA)
	if err != nil || !ok {
		return "", time.Time{}, "", fmt.Errorf("row %s has no $updatedAt", id)
	}
	updatedAt, err = ParseTime(ua)
	if err != nil {
		return "", time.Time{}, "", fmt.Errorf("row %s: %w", id, err)
	}
	seq, err = parseSequence(rawSeq)
	if err != nil {
		return "", time.Time{}, "", fmt.Errorf("row %s: %w", id, err)
	}
	return id, updatedAt, seq, nil
}

// ParseTime parses an Appwrite datetime with any offset (Appwrite writes +00:00, tolerate Z).
func ParseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("datetime %q: want e.g. 2026-03-26T10:00:00.123+00:00", s)
	}
	return t, nil
}
