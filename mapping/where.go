package mapping

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/appwrite-sync/appwrite-sync/internal/yamlnode"
)

// scalarKind is the type of a literal in a where condition.
type scalarKind uint8

const (
	kNull scalarKind = iota
	kBool
	kNumber
	kString
)

// scalar is a literal from YAML, compared with JSON values of the row.
type scalar struct {
	kind  scalarKind
	b     bool
	s     string // string value, or the number's text
	f     float64
	i     int64
	isInt bool
}

func (s scalar) String() string {
	switch s.kind {
	case kNull:
		return "null"
	case kBool:
		return strconv.FormatBool(s.b)
	case kNumber:
		return s.s
	}
	return strconv.Quote(s.s)
}

// equal compares a JSON value with the literal: strings with strings, booleans with booleans,
// numbers numerically (a JSON 5 equals a YAML 5.0). A list equals the literal when one of its
// elements does (like a Meilisearch filter on an array attribute). Null equals null or missing.
func (s scalar) equal(v any) bool {
	switch x := v.(type) {
	case nil:
		return s.kind == kNull
	case string:
		return s.kind == kString && s.s == x
	case bool:
		return s.kind == kBool && s.b == x
	case []any:
		for _, e := range x {
			if e != nil && s.equal(e) {
				return true
			}
		}
		return false
	case json.Number, float64, int, int64:
		if s.kind != kNumber {
			return false
		}
		t, err := numText(x)
		if err != nil {
			return false
		}
		if t == s.s {
			return true
		}
		if s.isInt {
			if i, err := strconv.ParseInt(t, 10, 64); err == nil {
				return i == s.i
			}
		}
		f, err := strconv.ParseFloat(t, 64)
		return err == nil && !math.IsInf(f, 0) && f == s.f
	}
	return false
}

type condOp uint8

const (
	opEq condOp = iota + 1
	opIn
	opNot
	opNotIn
)

// cond is one `where` entry: the value at path compared with vals.
type cond struct {
	path path
	op   condOp
	vals []scalar
}

func (c *cond) match(r Row) bool {
	v, _ := c.path.get(r)
	hit := false
	for _, s := range c.vals {
		if s.equal(v) {
			hit = true
			break
		}
	}
	if c.op == opNot || c.op == opNotIn {
		return !hit
	}
	return hit
}

func (c *cond) String() string {
	vals := make([]string, len(c.vals))
	for i, v := range c.vals {
		vals[i] = v.String()
	}
	switch c.op {
	case opEq:
		return c.path.raw + " = " + vals[0]
	case opNot:
		return c.path.raw + " != " + vals[0]
	case opIn:
		return c.path.raw + " in [" + strings.Join(vals, ", ") + "]"
	}
	return c.path.raw + " not in [" + strings.Join(vals, ", ") + "]"
}

// where is a conjunction of conditions; nil matches every row.
type where []cond

// Matches reports whether the row satisfies the table's `where` predicate (true without one).
// A row that does not match must be absent from both sinks.
func (t *Table) Matches(r Row) bool {
	for i := range t.where {
		if !t.where[i].match(r) {
			return false
		}
	}
	return true
}

// String renders the predicate canonically (sorted by path), for plans and fingerprints.
func (w where) String() string {
	if len(w) == 0 {
		return ""
	}
	s := make([]string, len(w))
	for i := range w {
		s[i] = w[i].String()
	}
	sort.Strings(s)
	return strings.Join(s, " AND ")
}

const whereFix = "write `path: value`, `path: null`, `path: {in: [a, b]}`, `path: {not: value}` or `path: {not_in: [a, b]}`"

// parseWhere decodes the `where` mapping: path → value | null | {in, not, not_in}.
func parseWhere(d *yamlnode.Node, n *yaml.Node, p string) where {
	var w where
	for _, f := range d.Fields(n, p) {
		pa, err := compilePath(f.Key)
		if err != nil {
			errAt(d, f.KeyN, f.Path, fmt.Sprintf("invalid path %q: %v", f.Key, err),
				"write a dotted path such as status or author.name")
			continue
		}
		switch f.Value.Kind {
		case yaml.ScalarNode:
			if s, ok := parseScalar(d, f.Value, f.Path); ok {
				w = append(w, cond{path: pa, op: opEq, vals: []scalar{s}})
			}
		case yaml.MappingNode:
			fields := d.Fields(f.Value, f.Path, "in", "not", "not_in")
			if len(fields) == 0 && len(f.Value.Content) == 0 {
				errAt(d, f.Value, f.Path, "empty condition", whereFix)
			}
			for _, op := range fields {
				switch op.Key {
				case "not":
					if s, ok := parseScalar(d, op.Value, op.Path); ok {
						w = append(w, cond{path: pa, op: opNot, vals: []scalar{s}})
					}
				default: // in, not_in
					vals, ok := parseScalarList(d, op.Value, op.Path)
					if !ok {
						continue
					}
					o := opIn
					if op.Key == "not_in" {
						o = opNotIn
					}
					w = append(w, cond{path: pa, op: o, vals: vals})
				}
			}
		default:
			errAt(d, f.Value, f.Path, "a list is not a condition", "to match any of several values write `"+f.Key+": {in: [a, b]}`")
		}
	}
	return w
}

func parseScalar(d *yamlnode.Node, n *yaml.Node, p string) (scalar, bool) {
	if n == nil || n.Kind != yaml.ScalarNode {
		errAt(d, n, p, "must be a single value (string, number, boolean or null)", whereFix)
		return scalar{}, false
	}
	switch n.ShortTag() {
	case "!!null":
		return scalar{kind: kNull}, true
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err == nil {
			return scalar{kind: kBool, b: b}, true
		}
	case "!!int":
		var i int64
		if err := n.Decode(&i); err == nil {
			return scalar{kind: kNumber, s: strconv.FormatInt(i, 10), f: float64(i), i: i, isInt: true}, true
		}
		var f float64
		if err := n.Decode(&f); err == nil {
			return scalar{kind: kNumber, s: strconv.FormatFloat(f, 'g', -1, 64), f: f}, true
		}
	case "!!float":
		var f float64
		if err := n.Decode(&f); err == nil {
			if math.IsNaN(f) || math.IsInf(f, 0) {
				errAt(d, n, p, "NaN and infinities never occur in JSON rows", "compare with a finite number")
				return scalar{}, false
			}
			s := scalar{kind: kNumber, s: strconv.FormatFloat(f, 'g', -1, 64), f: f}
			if f == math.Trunc(f) && math.Abs(f) < 1<<63 {
				s.i, s.isInt = int64(f), true
			}
			return s, true
		}
	default: // strings, and timestamps or other tags compared as their text
		return scalar{kind: kString, s: n.Value}, true
	}
	errAt(d, n, p, "cannot read this value", whereFix)
	return scalar{}, false
}

func parseScalarList(d *yamlnode.Node, n *yaml.Node, p string) ([]scalar, bool) {
	if n.Kind != yaml.SequenceNode {
		errAt(d, n, p, "must be a list of values", "write e.g. [published, draft]")
		return nil, false
	}
	if len(n.Content) == 0 {
		errAt(d, n, p, "empty list", "list at least one value")
		return nil, false
	}
	out := make([]scalar, 0, len(n.Content))
	ok := true
	for i, c := range n.Content {
		s, good := parseScalar(d, c, fmt.Sprintf("%s[%d]", p, i))
		ok = ok && good
		out = append(out, s)
	}
	return out, ok
}
