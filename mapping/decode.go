package mapping

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/appwrite-sync/appwrite-sync/internal/rawjson"
)

// maxDepth bounds nesting like encoding/json does, so hostile input cannot exhaust the stack.
const maxDepth = 10000

// rowDecoder is a strict single-pass JSON parser producing exactly what encoding/json's
// Decoder with UseNumber produces (map[string]any, []any, json.Number, string, bool, nil;
// invalid UTF-8 and lone surrogates become U+FFFD; a repeated key keeps the last value), in a
// fraction of the time: DecodeRow is on the path of every row of every sink. FuzzDecodeRow
// checks the equivalence.
//
// The input is copied into one string up front; unescaped strings, keys and numbers are
// substrings of it, so they cost no allocation of their own (they keep the row's text alive
// as long as any of them is referenced, which for a row being projected is what we want).
type rowDecoder struct {
	data  []byte
	s     string // data as a string
	i     int
	depth int
	stack []any  // elements of the arrays being parsed, so each array is allocated once
	buf   []byte // scratch for unescaping strings
	// keep, when set, names the members of the outermost object to decode; the values of
	// the others are checked (the input must still be exactly one valid object) but not built.
	keep map[string]bool
}

type syntaxError struct {
	msg string
	off int
}

func (e *syntaxError) Error() string { return fmt.Sprintf("%s at offset %d", e.msg, e.off) }

func (d *rowDecoder) fail(msg string) error { return &syntaxError{msg: msg, off: d.i} }

func (d *rowDecoder) unexpected() error {
	if d.i >= len(d.data) {
		return d.fail("unexpected end of JSON input")
	}
	return d.fail(fmt.Sprintf("invalid character %q", d.data[d.i]))
}

func (d *rowDecoder) skipWS() {
	for d.i < len(d.data) {
		switch d.data[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// decodeObject parses data, which must be exactly one JSON object (surrounding whitespace
// allowed).
func decodeObject(data []byte) (map[string]any, error) { return decodeObjectKeys(data, nil) }

// decodeObjectKeys is decodeObject that builds only the outermost members named in keep (all
// when keep is nil).
func decodeObjectKeys(data []byte, keep map[string]bool) (map[string]any, error) {
	d := rowDecoder{data: data, s: string(data), keep: keep}
	d.skipWS()
	if d.i >= len(d.data) || d.data[d.i] != '{' {
		if d.i < len(d.data) {
			return nil, d.fail("not an object")
		}
		return nil, d.unexpected()
	}
	hint := 32 // Appwrite rows carry 6 to 10 $ keys plus their columns
	if keep != nil {
		hint = len(keep)
	}
	m, err := d.object(hint)
	if err != nil {
		return nil, err
	}
	d.skipWS()
	if d.i != len(d.data) {
		return nil, d.fail("data after the object")
	}
	return m, nil
}

func (d *rowDecoder) value() (any, error) {
	if d.i >= len(d.data) {
		return nil, d.unexpected()
	}
	switch c := d.data[d.i]; {
	case c == '{':
		return d.object(0)
	case c == '[':
		return d.array()
	case c == '"':
		return d.str()
	case c == '-' || (c >= '0' && c <= '9'):
		return d.number()
	case c == 't':
		return true, d.literal("true")
	case c == 'f':
		return false, d.literal("false")
	case c == 'n':
		return nil, d.literal("null")
	}
	return nil, d.unexpected()
}

// skip checks the value at d.i exactly as value parses it, without building it.
func (d *rowDecoder) skip() error {
	if d.i >= len(d.data) {
		return d.unexpected()
	}
	switch c := d.data[d.i]; {
	case c == '{' || c == '[':
		end := byte('}')
		if c == '[' {
			end = ']'
		}
		d.depth++
		if d.depth > maxDepth {
			return d.fail("exceeded max depth")
		}
		d.i++
		d.skipWS()
		if d.i < len(d.data) && d.data[d.i] == end {
			d.i++
			d.depth--
			return nil
		}
		for {
			if c == '{' {
				if d.i >= len(d.data) || d.data[d.i] != '"' {
					return d.unexpected()
				}
				if _, err := d.str(); err != nil {
					return err
				}
				d.skipWS()
				if d.i >= len(d.data) || d.data[d.i] != ':' {
					return d.unexpected()
				}
				d.i++
				d.skipWS()
			}
			if err := d.skip(); err != nil {
				return err
			}
			d.skipWS()
			if d.i >= len(d.data) {
				return d.unexpected()
			}
			switch d.data[d.i] {
			case ',':
				d.i++
				d.skipWS()
			case end:
				d.i++
				d.depth--
				return nil
			default:
				return d.unexpected()
			}
		}
	case c == '"':
		_, err := d.str()
		return err
	case c == '-' || (c >= '0' && c <= '9'):
		_, err := d.number()
		return err
	case c == 't':
		return d.literal("true")
	case c == 'f':
		return d.literal("false")
	case c == 'n':
		return d.literal("null")
	}
	return d.unexpected()
}

func (d *rowDecoder) literal(lit string) error {
	if len(d.data)-d.i < len(lit) || string(d.data[d.i:d.i+len(lit)]) != lit {
		return d.fail("invalid literal")
	}
	d.i += len(lit)
	return nil
}

func (d *rowDecoder) object(hint int) (map[string]any, error) {
	d.depth++
	if d.depth > maxDepth {
		return nil, d.fail("exceeded max depth")
	}
	d.i++ // '{'
	m := make(map[string]any, hint)
	d.skipWS()
	if d.i < len(d.data) && d.data[d.i] == '}' {
		d.i++
		d.depth--
		return m, nil
	}
	for {
		if d.i >= len(d.data) || d.data[d.i] != '"' {
			return nil, d.unexpected()
		}
		k, err := d.str()
		if err != nil {
			return nil, err
		}
		d.skipWS()
		if d.i >= len(d.data) || d.data[d.i] != ':' {
			return nil, d.unexpected()
		}
		d.i++
		d.skipWS()
		if d.keep != nil && d.depth == 1 && !d.keep[k] {
			if err := d.skip(); err != nil {
				return nil, err
			}
		} else {
			v, err := d.value()
			if err != nil {
				return nil, err
			}
			m[k] = v
		}
		end, err := d.next('}')
		if err != nil {
			return nil, err
		}
		if end {
			return m, nil
		}
	}
}

// next reads what follows a member or an element: a comma (end false, at the next one) or
// closer (end true, the object or array done), or fails.
func (d *rowDecoder) next(closer byte) (end bool, err error) {
	d.skipWS()
	if d.i >= len(d.data) {
		return false, d.unexpected()
	}
	switch d.data[d.i] {
	case ',':
		d.i++
		d.skipWS()
		return false, nil
	case closer:
		d.i++
		d.depth--
		return true, nil
	}
	return false, d.unexpected()
}

func (d *rowDecoder) array() ([]any, error) {
	d.depth++
	if d.depth > maxDepth {
		return nil, d.fail("exceeded max depth")
	}
	d.i++ // '['
	d.skipWS()
	if d.i < len(d.data) && d.data[d.i] == ']' {
		d.i++
		d.depth--
		return []any{}, nil
	}
	base := len(d.stack)
	for {
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		d.stack = append(d.stack, v)
		end, err := d.next(']')
		if err != nil {
			return nil, err
		}
		if end {
			out := make([]any, len(d.stack)-base)
			copy(out, d.stack[base:])
			clear(d.stack[base:])
			d.stack = d.stack[:base]
			return out, nil
		}
	}
}

func (d *rowDecoder) number() (json.Number, error) {
	end, ok := rawjson.ScanNumber(d.data[d.i:])
	if !ok {
		d.i += end
		return "", d.unexpected()
	}
	n := json.Number(d.s[d.i : d.i+end])
	d.i += end
	return n, nil
}

// plainByte marks the bytes a string may hold without escaping: not '"', not '\\', not a
// control character. Bytes >= 0x80 are plain too; the UTF-8 they form is validated once.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// str parses a string at d.data[d.i] == '"'. The common case (no escapes, valid UTF-8) is a
// substring of the input: no allocation.
func (d *rowDecoder) str() (string, error) {
	start := d.i + 1
	var high byte
	i := start
	for i < len(d.data) && plainByte[d.data[i]] {
		high |= d.data[i]
		i++
	}
	if i < len(d.data) && d.data[i] == '"' {
		v := d.s[start:i]
		if high < utf8.RuneSelf || utf8.ValidString(v) {
			d.i = i + 1
			return v, nil
		}
		return d.strSlow(start)
	}
	if i >= len(d.data) {
		d.i = len(d.data)
		return "", d.unexpected()
	}
	return d.strSlow(start) // an escape or a control character
}

// strSlow handles escapes, control characters and non-ASCII like encoding/json, for the
// string whose contents start at start (d.i is at its opening quote).
func (d *rowDecoder) strSlow(start int) (string, error) {
	end, err := rawjson.StringEnd(d.data, start-1)
	if err != nil {
		d.i = len(d.data)
		return "", d.unexpected()
	}
	buf, bad := rawjson.Unescape(d.buf[:0], d.data[start:end-1])
	d.buf = buf[:0]
	if bad >= 0 {
		d.i = start + bad
		switch {
		case d.data[d.i] != '\\':
			return "", d.fail("control character in string")
		case d.data[d.i+1] == 'u':
			return "", d.fail("invalid \\u escape")
		default:
			return "", d.fail("invalid escape")
		}
	}
	d.i = end
	return string(buf), nil
}
