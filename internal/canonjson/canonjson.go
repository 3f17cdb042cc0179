// Package canonjson writes the canonical form of a JSON object: exactly what encoding/json
// produces when it re-marshals the object decoded into map[string]any with UseNumber (no
// insignificant whitespace, keys sorted, the last of duplicate keys kept, numbers verbatim,
// strings re-escaped with encoding/json's rules), without decoding it into maps. The content
// hash of a row (connector.ContentHash) is a digest of this form; a fuzz test holds it to
// encoding/json.
package canonjson

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"unicode/utf8"

	"github.com/appwrite-sync/appwrite-sync/internal/rawjson"
)

// A canonicalizer writes the canonical form of a JSON value into buf (see value). The
// canonical form is exactly what encoding/json produces when it re-marshals the value decoded
// into `any` with UseNumber: no insignificant whitespace, object keys sorted (the last of
// duplicate keys wins), numbers verbatim, strings re-escaped with encoding/json's rules. It
// exists because decoding every row into maps and re-marshalling it costs several times more,
// on the ingest path (BenchmarkContentHash compares the two). A fuzz test holds it to the
// encoding/json result.
type canonicalizer struct {
	drop    func(key []byte) bool // top-level members left out; nil keeps all
	pairs   []pair                // scratch, reused across objects
	buf     []byte
	depth   int    // objects and arrays open
	scratch []byte // a decoded string
	out     []byte // an object's members in key order, before they go back into buf
}

// maxDepth is encoding/json's nesting limit: a value nested deeper is rejected, as
// json.Valid rejects it, rather than recursing as deep as a body allows.
const maxDepth = 10000

type pair struct {
	key        []byte // decoded; the raw bytes of the row when they needed no unescaping
	plain      bool   // key is written back as it is (see plain)
	start, end int    // the value's canonical bytes in buf
}

var (
	errCanon = errors.New("invalid JSON")
	errDepth = errors.New("exceeded max depth")
)

var canonPool = sync.Pool{New: func() any { return &canonicalizer{} }}

// ErrNotObject: the input is not one JSON object (another value, invalid JSON, nested past
// encoding/json's limit, or data after the object).
var ErrNotObject = errors.New("not a JSON object")

// Object calls use with the canonical form of the JSON object obj, leaving out the top-level
// members whose decoded key drop reports (drop may be nil). The bytes passed to use are only
// valid during the call: they belong to a pooled buffer.
//
// Object does not check that obj is valid UTF-8 (invalid bytes are replaced by U+FFFD, as
// encoding/json replaces them); callers that must refuse it check first.
func Object(obj []byte, drop func(key []byte) bool, use func(canonical []byte)) error {
	c := canonPool.Get().(*canonicalizer)
	defer canonPool.Put(c)
	c.buf, c.pairs, c.depth, c.drop = c.buf[:0], c.pairs[:0], 0, drop
	defer func() { c.drop = nil }()
	s := skipWS(obj)
	if len(s) == 0 || s[0] != '{' {
		return ErrNotObject
	}
	rest, err := c.value(s, true)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNotObject, err)
	}
	if len(skipWS(rest)) > 0 {
		return fmt.Errorf("%w: data after the object", ErrNotObject)
	}
	use(c.buf)
	return nil
}

func skipWS(s []byte) []byte {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t' || s[0] == '\n' || s[0] == '\r') {
		s = s[1:]
	}
	return s
}

// value appends the canonical form of the value at the start of s to c.buf. top: the
// outermost object, whose members c.drop reports are left out.
func (c *canonicalizer) value(s []byte, top bool) ([]byte, error) {
	s = skipWS(s)
	if len(s) == 0 {
		return nil, errCanon
	}
	switch s[0] {
	case '{', '[':
		if c.depth++; c.depth > maxDepth {
			return nil, errDepth
		}
		var rest []byte
		var err error
		if s[0] == '{' {
			rest, err = c.object(s[1:], top)
		} else {
			rest, err = c.array(s[1:])
		}
		c.depth--
		return rest, err
	case '"':
		str, rest, err := scanString(s)
		if err != nil {
			return nil, err
		}
		c.buf, err = c.appendCanonString(c.buf, str)
		return rest, err
	case 't':
		return c.literal(s, "true")
	case 'f':
		return c.literal(s, "false")
	case 'n':
		return c.literal(s, "null")
	default:
		n := rawjson.NumberLen(s)
		if n == 0 {
			return nil, errCanon
		}
		c.buf = append(c.buf, s[:n]...)
		return s[n:], nil
	}
}

// array is value for the rest of an array after its '['.
func (c *canonicalizer) array(s []byte) ([]byte, error) {
	c.buf = append(c.buf, '[')
	s = skipWS(s)
	if len(s) > 0 && s[0] == ']' {
		c.buf = append(c.buf, ']')
		return s[1:], nil
	}
	for {
		var err error
		if s, err = c.value(s, false); err != nil {
			return nil, err
		}
		s = skipWS(s)
		if len(s) == 0 {
			return nil, errCanon
		}
		if s[0] == ']' {
			c.buf = append(c.buf, ']')
			return s[1:], nil
		}
		if s[0] != ',' {
			return nil, errCanon
		}
		c.buf = append(c.buf, ',')
		s = s[1:]
	}
}

func (c *canonicalizer) literal(s []byte, lit string) ([]byte, error) {
	if len(s) < len(lit) || string(s[:len(lit)]) != lit {
		return nil, errCanon
	}
	c.buf = append(c.buf, lit...)
	return s[len(lit):], nil
}

func (c *canonicalizer) object(s []byte, top bool) ([]byte, error) {
	base := len(c.pairs)
	// The keys point into the row: drop them, so a pooled canonicalizer keeps no body alive.
	defer func() { clear(c.pairs[base:]); c.pairs = c.pairs[:base] }()
	// Members are canonicalised into buf after a mark, then copied back in key order.
	mark := len(c.buf)
	s = skipWS(s)
	if len(s) > 0 && s[0] == '}' {
		c.buf = append(c.buf, '{', '}')
		return s[1:], nil
	}
	for {
		s = skipWS(s)
		if len(s) == 0 || s[0] != '"' {
			return nil, errCanon
		}
		raw, rest, err := scanString(s)
		if err != nil {
			return nil, err
		}
		// A plain key (nearly all) is used where it lies in the row: no copy.
		key, isPlain := raw, plain(raw)
		if !isPlain {
			dec, bad := rawjson.Unescape(nil, raw)
			if bad >= 0 {
				return nil, errCanon
			}
			key = dec
		}
		s = skipWS(rest)
		if len(s) == 0 || s[0] != ':' {
			return nil, errCanon
		}
		start := len(c.buf)
		if s, err = c.value(s[1:], false); err != nil {
			return nil, err
		}
		if !(top && c.drop != nil && c.drop(key)) {
			c.pairs = append(c.pairs, pair{key: key, plain: isPlain, start: start, end: len(c.buf)})
		}
		s = skipWS(s)
		if len(s) == 0 {
			return nil, errCanon
		}
		if s[0] == '}' {
			s = s[1:]
			break
		}
		if s[0] != ',' {
			return nil, errCanon
		}
		s = s[1:]
	}
	ps := c.pairs[base:]
	slices.SortStableFunc(ps, func(a, b pair) int { return bytes.Compare(a.key, b.key) })
	// Nested objects were written completely before this one starts its out: one scratch
	// buffer serves every level.
	out := append(c.out[:0], '{')
	first := true
	for i, p := range ps {
		if i+1 < len(ps) && bytes.Equal(ps[i+1].key, p.key) {
			continue // a later duplicate wins, as in a map
		}
		if !first {
			out = append(out, ',')
		}
		first = false
		if p.plain {
			out = append(append(append(out, '"'), p.key...), '"')
		} else {
			out = rawjson.AppendString(out, p.key, true)
		}
		out = append(out, ':')
		out = append(out, c.buf[p.start:p.end]...)
	}
	out = append(out, '}')
	c.buf = append(c.buf[:mark], out...)
	c.out = out
	return s, nil
}

// scanString returns the raw contents of the string literal at the start of s (without
// quotes, escapes undecoded) and the rest.
func scanString(s []byte) ([]byte, []byte, error) {
	end, err := rawjson.StringEnd(s, 0)
	if err != nil {
		return nil, nil, errCanon
	}
	return s[1 : end-1], s[end:], nil
}

// plain reports whether raw string contents need no unescaping and encoding/json would write
// them back unchanged.
func plain(raw []byte) bool {
	i := 0
	// Eight bytes at a time while they are all printable ASCII other than the quote, the
	// backslash, <, > and &: a word with any other byte goes to the loop below, with the rest.
	for ; i+8 <= len(raw); i += 8 {
		if !plain8(binary.LittleEndian.Uint64(raw[i:])) {
			break
		}
	}
	return plainFrom(raw, i)
}

// plainFrom is plain for raw[i:], byte by byte.
func plainFrom(raw []byte, i int) bool {
	for i < len(raw) {
		b := raw[i]
		if b < utf8.RuneSelf {
			if b < 0x20 || b == '\\' || b == '"' || b == '<' || b == '>' || b == '&' {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(raw[i:])
		if r == utf8.RuneError || r == '\u2028' || r == '\u2029' {
			return false
		}
		i += size
	}
	return true
}

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// hasZero reports whether a byte of x is zero (the classic SWAR test; as a yes or no it is
// exact, though the bits above a zero byte may be set by its borrow).
func hasZero(x uint64) bool { return (x-ones)&^x&highs != 0 }

// plain8 reports whether all eight bytes of x are ASCII at or above 0x20 and none is the
// quote, the backslash, <, > or &: the bytes encoding/json writes as they are.
func plain8(x uint64) bool {
	if x&highs != 0 || (x-0x20*ones)&^x&highs != 0 { // non-ASCII, or a byte below 0x20
		return false
	}
	for _, c := range [...]uint64{'"', '\\', '<', '>', '&'} {
		if hasZero(x ^ (c * ones)) {
			return false
		}
	}
	return true
}

// appendCanonString appends raw (undecoded string contents) as encoding/json would write the
// decoded string.
func (c *canonicalizer) appendCanonString(dst []byte, raw []byte) ([]byte, error) {
	if plain(raw) {
		dst = append(dst, '"')
		dst = append(dst, raw...)
		return append(dst, '"'), nil
	}
	dec, bad := rawjson.Unescape(c.scratch[:0], raw)
	if bad >= 0 {
		return nil, errCanon
	}
	c.scratch = dec
	return rawjson.AppendString(dst, dec, true), nil
}
