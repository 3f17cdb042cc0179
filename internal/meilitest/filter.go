package meilitest

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// This file implements Meilisearch's filter language (filter-parser's grammar) closely enough
// for delete-by-filter and fetch-by-filter: =, !=, >, >=, <, <=, TO, IN, NOT IN, EXISTS,
// NOT EXISTS, IS [NOT] NULL, IS [NOT] EMPTY, AND, OR, NOT, parentheses, quoted and bare values.
// Keywords are upper case only, as in Meilisearch. String equality is case-insensitive because
// Meilisearch compares normalized facet values (NFKD, trimmed, lower-cased): `"$id" = "ABC"`
// also matches "abc".

const maxFilterDepth = 200

type condOp int

const (
	opEq condOp = iota
	opNe
	opGt
	opGte
	opLt
	opLte
	opTo
	opIn
	opExists
	opNull
	opEmpty
	opContains
	opStartsWith
)

var opNames = map[condOp]string{
	opEq: "=", opNe: "!=", opGt: ">", opGte: ">=", opLt: "<", opLte: "<=", opTo: "TO",
	opIn: "IN", opExists: "EXISTS", opNull: "IS NULL", opEmpty: "IS EMPTY",
	opContains: "CONTAINS", opStartsWith: "STARTS WITH",
}

func (o condOp) comparison() bool { return o >= opGt && o <= opTo }

type filterExpr interface {
	match(doc []byte) bool
}

type fAnd []filterExpr

func (a fAnd) match(doc []byte) bool {
	for _, e := range a {
		if !e.match(doc) {
			return false
		}
	}
	return true
}

type fOr []filterExpr

func (o fOr) match(doc []byte) bool {
	for _, e := range o {
		if e.match(doc) {
			return true
		}
	}
	return false
}

type fNot struct{ x filterExpr }

func (n fNot) match(doc []byte) bool { return !n.x.match(doc) }

// filterValue is a literal of the filter, pre-normalised for string and number comparison.
type filterValue struct {
	raw   string
	norm  string
	num   float64
	isNum bool
}

func newFilterValue(s string) filterValue {
	v := filterValue{raw: s, norm: normalizeFacet(s)}
	if f, err := strconv.ParseFloat(strings.TrimSpace(s), 64); err == nil {
		v.num, v.isNum = f, true
	}
	return v
}

type fCond struct {
	attr   string
	src    string // the filter string the condition comes from, for error messages
	start  int    // byte offsets of attr in src
	end    int
	op     condOp
	values []filterValue
	set    map[string]bool // normalised values of an IN list
}

// location renders the "line:col" suffix Meilisearch appends to filter errors.
func (c *fCond) location() string {
	return fmt.Sprintf("%d:%d %s", column(c.src, c.start), column(c.src, c.end), c.src)
}

func column(src string, byteOffset int) int { return utf8.RuneCountInString(src[:byteOffset]) + 1 }

func (c *fCond) match(doc []byte) bool {
	vals, exists := fieldValues(doc, c.attr)
	switch c.op {
	case opExists:
		return exists
	case opNull:
		for _, v := range vals {
			if v == nil {
				return true
			}
		}
		return false
	case opEmpty:
		for _, v := range vals {
			switch t := v.(type) {
			case string:
				if t == "" {
					return true
				}
			case []any:
				if len(t) == 0 {
					return true
				}
			case map[string]any:
				if len(t) == 0 {
					return true
				}
			}
		}
		return false
	case opEq:
		return anyLeaf(vals, func(v any) bool { return facetEqual(v, c.values[0]) })
	case opNe:
		return !anyLeaf(vals, func(v any) bool { return facetEqual(v, c.values[0]) })
	case opIn:
		return anyLeaf(vals, func(v any) bool {
			switch t := v.(type) {
			case string:
				return c.set[normalizeFacet(t)]
			case bool:
				return c.set[strconv.FormatBool(t)]
			case float64:
				for _, fv := range c.values {
					if fv.isNum && fv.num == t {
						return true
					}
				}
			}
			return false
		})
	default:
		return anyLeaf(vals, func(v any) bool {
			n, ok := v.(float64)
			if !ok {
				return false
			}
			switch c.op {
			case opGt:
				return c.values[0].isNum && n > c.values[0].num
			case opGte:
				return c.values[0].isNum && n >= c.values[0].num
			case opLt:
				return c.values[0].isNum && n < c.values[0].num
			case opLte:
				return c.values[0].isNum && n <= c.values[0].num
			case opTo:
				return c.values[0].isNum && c.values[1].isNum && n >= c.values[0].num && n <= c.values[1].num
			}
			return false
		})
	}
}

// anyLeaf applies fn to every scalar of vals, descending into arrays as Meilisearch flattens them.
func anyLeaf(vals []any, fn func(any) bool) bool {
	for _, v := range vals {
		if arr, ok := v.([]any); ok {
			if anyLeaf(arr, fn) {
				return true
			}
			continue
		}
		if fn(v) {
			return true
		}
	}
	return false
}

func facetEqual(v any, fv filterValue) bool {
	switch t := v.(type) {
	case string:
		return normalizeFacet(t) == fv.norm
	case float64:
		return fv.isNum && t == fv.num
	case bool:
		return strconv.FormatBool(t) == fv.norm
	}
	return false
}

// normalizeFacet mirrors milli's normalize_facet: NFKD, trimmed, lower-cased.
func normalizeFacet(s string) string {
	s = strings.TrimSpace(s)
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return strings.ToLower(norm.NFKD.String(s))
		}
	}
	return strings.ToLower(s)
}

// fieldValues returns the values found at the dotted path attr, reading both literal dotted
// keys ({"a.b": 1}) and nested objects ({"a": {"b": 1}}), through arrays, as Meilisearch's
// flattening does.
func fieldValues(doc []byte, attr string) (vals []any, exists bool) {
	forEachField(doc, func(k, v []byte) bool {
		name := unquoteKey(k)
		switch {
		case name == attr:
			exists = true
			vals = append(vals, decodeAny(v))
		case strings.HasPrefix(attr, name+"."):
			descend(decodeAny(v), attr[len(name)+1:], &vals, &exists)
		}
		return true
	})
	return vals, exists
}

func descend(v any, rest string, vals *[]any, exists *bool) {
	switch t := v.(type) {
	case map[string]any:
		for k, child := range t {
			switch {
			case k == rest:
				*exists = true
				*vals = append(*vals, child)
			case strings.HasPrefix(rest, k+"."):
				descend(child, rest[len(k)+1:], vals, exists)
			}
		}
	case []any:
		for _, child := range t {
			descend(child, rest, vals, exists)
		}
	}
}

func decodeAny(raw []byte) any {
	var v any
	_ = json.Unmarshal(raw, &v)
	return v
}

// filterError is a syntax error, reported synchronously as invalid_document_filter.
type filterError struct{ msg string }

func (e *filterError) Error() string { return e.msg }

const expectingOperation = "Was expecting an operation `=`, `!=`, `>=`, `>`, `<=`, `<`, `IN`, `NOT IN`, `TO`, `EXISTS`, `NOT EXISTS`, `IS NULL`, `IS NOT NULL`, `IS EMPTY`, `IS NOT EMPTY`, `CONTAINS`, `NOT CONTAINS`, `STARTS WITH`, `NOT STARTS WITH`, `_geoRadius`, or `_geoBoundingBox`"

type filterParser struct {
	src string
	pos int
}

func (p *filterParser) errAt(start, end int, format string, args ...any) error {
	return &filterError{fmt.Sprintf(format, args...) + fmt.Sprintf("\n%d:%d %s", column(p.src, start), column(p.src, end), p.src)}
}

func (p *filterParser) skipSpace() {
	for p.pos < len(p.src) {
		r, n := utf8.DecodeRuneInString(p.src[p.pos:])
		if !unicode.IsSpace(r) {
			return
		}
		p.pos += n
	}
}

func isValueComponent(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsNumber(r) || r == '_' || r == '-' || r == '.'
}

// keyword consumes kw if it is the next word (upper case, followed by a non-word character).
func (p *filterParser) keyword(kw string) bool {
	save := p.pos
	p.skipSpace()
	if strings.HasPrefix(p.src[p.pos:], kw) {
		rest := p.src[p.pos+len(kw):]
		r, _ := utf8.DecodeRuneInString(rest)
		if rest == "" || !isValueComponent(r) {
			p.pos += len(kw)
			return true
		}
	}
	p.pos = save
	return false
}

var reservedWords = map[string]bool{"AND": true, "OR": true, "NOT": true, "IN": true, "TO": true}

// value parses a quoted or bare value; ok is false when there is none.
func (p *filterParser) value() (val string, start, end int, ok bool, err error) {
	p.skipSpace()
	if p.pos >= len(p.src) {
		return "", p.pos, p.pos, false, nil
	}
	if q := p.src[p.pos]; q == '"' || q == '\'' {
		for j := p.pos + 1; j < len(p.src); j++ {
			switch p.src[j] {
			case '\\':
				j++
			case q:
				inner := p.src[p.pos+1 : j]
				start, end = p.pos+1, j
				p.pos = j + 1
				return strings.ReplaceAll(inner, `\`+string(q), string(q)), start, end, true, nil
			}
		}
		return "", 0, 0, false, p.errAt(p.pos, len(p.src), "Expression `%s` is missing the following closing delimiter: `%c`.", p.src[p.pos:], q)
	}
	start = p.pos
	for p.pos < len(p.src) {
		r, n := utf8.DecodeRuneInString(p.src[p.pos:])
		if !isValueComponent(r) {
			break
		}
		p.pos += n
	}
	if p.pos == start {
		return "", start, start, false, nil
	}
	word := p.src[start:p.pos]
	if reservedWords[word] {
		p.pos = start
		return "", start, start, false, p.errAt(start, start+len(word), "Was expecting a value but instead got `%s`, which is a reserved keyword. To use `%s` as a field name or a value, surround it by quotes.", word, word)
	}
	return word, start, p.pos, true, nil
}

func (p *filterParser) requireValue() (filterValue, error) {
	v, start, _, ok, err := p.value()
	if err != nil {
		return filterValue{}, err
	}
	if !ok {
		rest := strings.TrimSpace(p.src[start:])
		if rest == "" {
			return filterValue{}, p.errAt(start, start, "Was expecting a value but instead got nothing.")
		}
		return filterValue{}, p.errAt(start, start+len(rest), "Was expecting a value but instead got `%s`.", rest)
	}
	return newFilterValue(v), nil
}

func (p *filterParser) parseOr(depth int) (filterExpr, error) {
	if depth > maxFilterDepth {
		return nil, p.errAt(p.pos, len(p.src), "The filter exceeded the maximum depth limit. Try rewriting the filter so that it contains fewer nested conditions.")
	}
	first, err := p.parseAnd(depth + 1)
	if err != nil {
		return nil, err
	}
	list := fOr{first}
	for p.keyword("OR") {
		next, err := p.parseAnd(depth + 1)
		if err != nil {
			return nil, err
		}
		list = append(list, next)
	}
	if len(list) == 1 {
		return first, nil
	}
	return list, nil
}

func (p *filterParser) parseAnd(depth int) (filterExpr, error) {
	first, err := p.parseNot(depth + 1)
	if err != nil {
		return nil, err
	}
	list := fAnd{first}
	for p.keyword("AND") {
		next, err := p.parseNot(depth + 1)
		if err != nil {
			return nil, err
		}
		list = append(list, next)
	}
	if len(list) == 1 {
		return first, nil
	}
	return list, nil
}

func (p *filterParser) parseNot(depth int) (filterExpr, error) {
	if depth > maxFilterDepth {
		return nil, p.errAt(p.pos, len(p.src), "The filter exceeded the maximum depth limit. Try rewriting the filter so that it contains fewer nested conditions.")
	}
	if p.keyword("NOT") {
		x, err := p.parseNot(depth + 1)
		if err != nil {
			return nil, err
		}
		if n, ok := x.(fNot); ok {
			return n.x, nil
		}
		return fNot{x}, nil
	}
	return p.parsePrimary(depth + 1)
}

func (p *filterParser) parsePrimary(depth int) (filterExpr, error) {
	p.skipSpace()
	if p.pos < len(p.src) && p.src[p.pos] == '(' {
		open := p.pos
		p.pos++
		x, err := p.parseOr(depth + 1)
		if err != nil {
			return nil, err
		}
		p.skipSpace()
		if p.pos >= len(p.src) || p.src[p.pos] != ')' {
			return nil, p.errAt(open, len(p.src), "Expression `%s` is missing the following closing delimiter: `)`.", p.src[open:])
		}
		p.pos++
		return x, nil
	}
	for _, geo := range []string{"_geoRadius", "_geoBoundingBox", "_geoPoint", "_geoDistance", "_geo("} {
		if strings.HasPrefix(p.src[p.pos:], geo) {
			return nil, p.errAt(p.pos, len(p.src), "meilitest does not support geo filters (`%s`).", strings.TrimSuffix(geo, "("))
		}
	}
	attrStart := p.pos
	attr, start, end, ok, err := p.value()
	if err != nil {
		return nil, err
	}
	expecting := func() error {
		rest := strings.TrimRightFunc(p.src[attrStart:], unicode.IsSpace)
		return p.errAt(attrStart, attrStart+len(rest), "%s at `%s`.", expectingOperation, rest)
	}
	if !ok {
		return nil, expecting()
	}
	c := &fCond{attr: attr, src: p.src, start: start, end: end}
	p.skipSpace()
	rest := p.src[p.pos:]
	switch {
	case strings.HasPrefix(rest, "!="):
		c.op, p.pos = opNe, p.pos+2
	case strings.HasPrefix(rest, ">="):
		c.op, p.pos = opGte, p.pos+2
	case strings.HasPrefix(rest, "<="):
		c.op, p.pos = opLte, p.pos+2
	case strings.HasPrefix(rest, ">"):
		c.op, p.pos = opGt, p.pos+1
	case strings.HasPrefix(rest, "<"):
		c.op, p.pos = opLt, p.pos+1
	case strings.HasPrefix(rest, "="):
		c.op, p.pos = opEq, p.pos+1
	case p.keyword("IN"):
		return c, p.inList(c)
	case p.keyword("NOT"):
		switch {
		case p.keyword("IN"):
			return fNot{c}, p.inList(c)
		case p.keyword("EXISTS"):
			c.op = opExists
		case p.keyword("CONTAINS"):
			c.op = opContains
			v, err := p.requireValue()
			c.values = []filterValue{v}
			return fNot{c}, err
		case p.keyword("STARTS") && p.keyword("WITH"):
			c.op = opStartsWith
			v, err := p.requireValue()
			c.values = []filterValue{v}
			return fNot{c}, err
		default:
			return nil, expecting()
		}
		return fNot{c}, nil
	case p.keyword("EXISTS"):
		c.op = opExists
		return c, nil
	case p.keyword("IS"):
		negate := p.keyword("NOT")
		switch {
		case p.keyword("NULL"):
			c.op = opNull
		case p.keyword("EMPTY"):
			c.op = opEmpty
		default:
			return nil, expecting()
		}
		if negate {
			return fNot{c}, nil
		}
		return c, nil
	case p.keyword("CONTAINS"):
		c.op = opContains
		v, err := p.requireValue()
		c.values = []filterValue{v}
		return c, err
	case p.keyword("STARTS"):
		if !p.keyword("WITH") {
			return nil, expecting()
		}
		c.op = opStartsWith
		v, err := p.requireValue()
		c.values = []filterValue{v}
		return c, err
	default:
		from, _, _, ok, err := p.value()
		if err != nil {
			return nil, err
		}
		if !ok || !p.keyword("TO") {
			return nil, expecting()
		}
		to, err := p.requireValue()
		if err != nil {
			return nil, err
		}
		c.op, c.values = opTo, []filterValue{newFilterValue(from), to}
		return c, nil
	}
	v, err := p.requireValue()
	if err != nil {
		return nil, err
	}
	c.values = []filterValue{v}
	return c, nil
}

func (p *filterParser) inList(c *fCond) error {
	c.op = opIn
	p.skipSpace()
	if p.pos >= len(p.src) || p.src[p.pos] != '[' {
		return p.errAt(p.pos, len(p.src), "Expected `[` after `IN` keyword.")
	}
	p.pos++
	c.set = map[string]bool{}
	for {
		p.skipSpace()
		if p.pos < len(p.src) && p.src[p.pos] == ']' {
			p.pos++
			return nil
		}
		v, start, _, ok, err := p.value()
		if err != nil {
			return err
		}
		if !ok {
			if p.pos >= len(p.src) {
				return p.errAt(start, start, "Expected matching `]` after the list of field names given to `IN[`")
			}
			return p.errAt(start, len(p.src), "Expected only comma-separated field names inside `IN[..]` but instead found `%s`.", p.src[start:])
		}
		fv := newFilterValue(v)
		c.values = append(c.values, fv)
		c.set[fv.norm] = true
		p.skipSpace()
		if p.pos < len(p.src) && p.src[p.pos] == ',' {
			p.pos++
			continue
		}
		if p.pos < len(p.src) && p.src[p.pos] == ']' {
			p.pos++
			return nil
		}
		return p.errAt(p.pos, len(p.src), "Expected matching `]` after the list of field names given to `IN[`")
	}
}

// parseFilterString parses one filter expression; a blank string yields nil.
func parseFilterString(src string) (filterExpr, error) {
	if strings.TrimSpace(src) == "" {
		return nil, nil
	}
	p := &filterParser{src: src}
	x, err := p.parseOr(0)
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos < len(p.src) {
		return nil, p.errAt(p.pos, len(p.src), "Found unexpected characters at the end of the filter: `%s`. You probably forgot an `OR` or an `AND` rule.", p.src[p.pos:])
	}
	return x, nil
}

// parseFilter parses the JSON filter parameter: a string, or an array whose elements are ANDed
// and are strings or arrays of strings (ORed). It returns nil for an empty filter.
func parseFilter(raw json.RawMessage) (filterExpr, *APIError) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, apiErrorf(CodeInvalidDocumentFilter, "Invalid syntax for the filter parameter: `%v`.", err)
	}
	wrap := func(err error) *APIError {
		return newAPIError(CodeInvalidDocumentFilter, err.Error())
	}
	switch t := v.(type) {
	case nil:
		return nil, nil
	case string:
		x, err := parseFilterString(t)
		if err != nil {
			return nil, wrap(err)
		}
		return x, nil
	case []any:
		var and fAnd
		for _, el := range t {
			switch e := el.(type) {
			case string:
				x, err := parseFilterString(e)
				if err != nil {
					return nil, wrap(err)
				}
				if x != nil {
					and = append(and, x)
				}
			case []any:
				var or fOr
				for _, inner := range e {
					s, ok := inner.(string)
					if !ok {
						return nil, apiErrorf(CodeInvalidDocumentFilter, "Invalid syntax for the filter parameter: `expected String, found: %s`.", compactJSON(inner))
					}
					x, err := parseFilterString(s)
					if err != nil {
						return nil, wrap(err)
					}
					if x != nil {
						or = append(or, x)
					}
				}
				if len(or) > 0 {
					and = append(and, or)
				}
			default:
				return nil, apiErrorf(CodeInvalidDocumentFilter, "Invalid syntax for the filter parameter: `expected String, Array, found: %s`.", compactJSON(el))
			}
		}
		if len(and) == 0 {
			return nil, nil
		}
		return and, nil
	default:
		return nil, apiErrorf(CodeInvalidDocumentFilter, "Invalid syntax for the filter parameter: `expected String, Array, found: %s`.", compactJSON(v))
	}
}

func compactJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// conditions lists the leaf conditions of a filter.
func conditions(x filterExpr, out []*fCond) []*fCond {
	switch t := x.(type) {
	case *fCond:
		out = append(out, t)
	case fNot:
		out = conditions(t.x, out)
	case fAnd:
		for _, e := range t {
			out = conditions(e, out)
		}
	case fOr:
		for _, e := range t {
			out = conditions(e, out)
		}
	}
	return out
}

// checkFilter verifies, as Meilisearch does when it evaluates a filter, that every attribute is
// filterable with the operator used. indexUID is prefixed to messages when non-empty (task
// errors carry it, synchronous ones do not).
func checkFilter(x filterExpr, rules []filterRule, indexUID string) *APIError {
	prefix := ""
	if indexUID != "" {
		prefix = "Index `" + indexUID + "`: "
	}
	for _, c := range conditions(x, nil) {
		if c.op == opContains || c.op == opStartsWith {
			return newAPIError(CodeFeatureNotEnabled, prefix+"Using `CONTAINS` or `STARTS WITH` in a filter requires enabling the `contains filter` experimental feature. See https://github.com/orgs/meilisearch/discussions/763\n"+c.location())
		}
		i, rule := matchFilterRule(rules, c.attr)
		if rule == nil || (!rule.equality && !rule.comparison) {
			return newAPIError(CodeInvalidDocumentFilter, prefix+notFilterableMessage(c.attr, rules)+"\n"+c.location())
		}
		if c.op.comparison() && !rule.comparison {
			return apiErrorf(CodeInvalidDocumentFilter, "%sFilter operator `%s` is not allowed for the attribute `%s`.\n  - Note: allowed operators: OR, AND, NOT, =, !=, IN, IS EMPTY, IS NULL, EXISTS.\n  - Note: field `%s` matched rule #%d in `filterableAttributes`\n%s", prefix, opNames[c.op], c.attr, c.attr, i, c.location())
		}
		if !c.op.comparison() && c.op != opExists && c.op != opNull && c.op != opEmpty && !rule.equality {
			return apiErrorf(CodeInvalidDocumentFilter, "%sFilter operator `%s` is not allowed for the attribute `%s`.\n  - Note: allowed operators: OR, AND, NOT, <, >, <=, >=, TO, IS EMPTY, IS NULL, EXISTS.\n  - Note: field `%s` matched rule #%d in `filterableAttributes`\n%s", prefix, opNames[c.op], c.attr, c.attr, i, c.location())
		}
	}
	return nil
}

func notFilterableMessage(attr string, rules []filterRule) string {
	var names []string
	patterns := false
	for _, r := range rules {
		if r.object {
			patterns = true
		}
		if r.equality || r.comparison {
			names = append(names, r.patterns...)
		}
	}
	if len(names) == 0 {
		return "Attribute `" + attr + "` is not filterable. This index does not have configured filterable attributes."
	}
	sort.Strings(names)
	kind := "attributes"
	if patterns {
		kind = "attribute patterns"
	}
	return "Attribute `" + attr + "` is not filterable. Available filterable " + kind + " are: `" + strings.Join(names, "`, `") + "`."
}
