package rawjson

import (
	"bytes"
	"encoding/binary"
	"slices"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
)

// Postgres's jsonb text output, written without Postgres: the audit log's chain hashes the
// payload as the warehouse's jsonb renders it (package connector/audit), and rendering it in
// the service costs a fraction of a parse and a rendering in the state store for every entry.

// Bounds of what AppendJSONB renders itself; beyond them the caller asks Postgres.
const (
	// maxJSONBDepth is the deepest nesting rendered (Appwrite's documents nest a few levels;
	// Postgres refuses a few thousand).
	maxJSONBDepth = 128
	// maxJSONBNumber is the longest number rendered, in bytes (numeric refuses beyond
	// 131,072 digits before the point and 16,383 after it).
	maxJSONBNumber = 100
)

// AppendJSONB appends to dst what Postgres returns for `SELECT text::jsonb::text`: object
// keys ordered by length, then bytes, the last of duplicate keys kept, ", " and ": " between
// elements and members, strings decoded and escaped again as jsonb writes them (only ", \ and
// control characters escaped, \b \f \n \r \t short, the rest as lower-case \u00XX; / and
// non-ASCII as themselves), numbers as numeric writes them (appendNumeric).
//
// ok is false, and dst is returned unchanged, for what it does not render exactly as Postgres
// does, so that the caller asks Postgres instead: a number longer than maxJSONBNumber or with
// an exponent beyond maxJSONBExponent, nesting deeper than maxJSONBDepth, and anything jsonb
// refuses or that is not JSON (invalid UTF-8, a \u0000 escape, a lone surrogate).
func AppendJSONB(dst, text []byte) (out []byte, ok bool) {
	r := jsonbPool.Get().(*jsonbRenderer)
	defer jsonbPool.Put(r)
	r.buf, r.keys, r.pairs, r.depth = dst, r.keys[:0], r.pairs[:0], 0
	rest, ok := r.value(text)
	out, r.buf = r.buf, nil
	if !ok || len(skipSpace(rest)) > 0 {
		return dst, false
	}
	return out, true
}

var jsonbPool = sync.Pool{New: func() any { return &jsonbRenderer{} }}

// jsonbRenderer holds AppendJSONB's scratch space, reused across calls.
type jsonbRenderer struct {
	buf   []byte      // the output
	keys  []byte      // the decoded keys of the objects open, one after the other
	pairs []jsonbPair // the members of the objects open
	tmp   []byte      // an object's members in key order, before they go back into buf
	depth int
}

// jsonbPair is an object's member: its decoded key in keys, its rendered value in buf.
type jsonbPair struct{ k0, k1, v0, v1 int }

func skipSpace(s []byte) []byte {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t' || s[0] == '\n' || s[0] == '\r') {
		s = s[1:]
	}
	return s
}

// value renders the value at the start of s (after white space) into r.buf and returns the
// rest of s.
func (r *jsonbRenderer) value(s []byte) ([]byte, bool) {
	s = skipSpace(s)
	if len(s) == 0 {
		return nil, false
	}
	switch c := s[0]; c {
	case '{', '[':
		if r.depth++; r.depth > maxJSONBDepth {
			return nil, false
		}
		var rest []byte
		var ok bool
		if c == '{' {
			rest, ok = r.object(s[1:])
		} else {
			rest, ok = r.array(s[1:])
		}
		r.depth--
		return rest, ok
	case '"':
		var rest []byte
		var ok bool
		r.buf, rest, ok = jsonbString(r.buf, s, true)
		return rest, ok
	case 't':
		return r.literal(s, "true")
	case 'f':
		return r.literal(s, "false")
	case 'n':
		return r.literal(s, "null")
	default:
		end, ok := ScanNumber(s)
		if !ok || end > maxJSONBNumber {
			return nil, false
		}
		if r.buf, ok = appendNumeric(r.buf, s[:end]); !ok {
			return nil, false
		}
		return s[end:], true
	}
}

// maxJSONBExponent bounds the exponents appendNumeric writes out (numeric takes up to 1000).
const maxJSONBExponent = 100

// appendNumeric appends the JSON number num as numeric's output writes it: in positional
// notation with as many digits after the point as the input had, less its exponent (1.0E-7 is
// 0.00000010, 1.5e1 is 15), and no sign on zero. Not ok for an exponent beyond
// maxJSONBExponent.
func appendNumeric(dst, num []byte) ([]byte, bool) {
	neg := num[0] == '-'
	if neg {
		num = num[1:]
	}
	mant, exp := num, 0
	if i := bytes.IndexAny(num, "eE"); i >= 0 {
		mant = num[:i]
		e := num[i+1:]
		sign := 1
		switch e[0] {
		case '-':
			sign, e = -1, e[1:]
		case '+':
			e = e[1:]
		}
		for _, c := range e {
			if exp = exp*10 + int(c-'0'); exp > maxJSONBExponent {
				return dst, false
			}
		}
		exp *= sign
	}
	if !bytes.ContainsAny(mant, "123456789") {
		neg = false // numeric has no negative zero
	}
	if neg {
		dst = append(dst, '-')
	}
	if exp == 0 {
		return append(dst, mant...), true
	}
	intPart, frac, _ := bytes.Cut(mant, []byte{'.'})
	// The digits, and where the point goes among them; as many digits after it as frac has,
	// less the exponent (none when that is negative).
	point := len(intPart) + exp
	scale := max(len(frac)-exp, 0)
	var digits [2*maxJSONBExponent + maxJSONBNumber]byte
	d := append(append(digits[:0], intPart...), frac...)
	switch {
	case point <= 0:
		dst = append(dst, '0')
		if scale > 0 {
			dst = append(dst, '.')
			dst = append(dst, bytes.Repeat([]byte{'0'}, -point)...)
			dst = append(dst, d...)
		}
		return dst, true
	case point >= len(d):
		d = append(d, bytes.Repeat([]byte{'0'}, point-len(d))...)
		point = len(d)
	}
	whole := bytes.TrimLeft(d[:point], "0")
	if len(whole) == 0 {
		whole = []byte{'0'}
	}
	dst = append(dst, whole...)
	if scale > 0 {
		dst = append(dst, '.')
		dst = append(dst, d[point:point+scale]...)
	}
	return dst, true
}

func (r *jsonbRenderer) literal(s []byte, lit string) ([]byte, bool) {
	if !bytes.HasPrefix(s, []byte(lit)) {
		return nil, false
	}
	r.buf = append(r.buf, lit...)
	return s[len(lit):], true
}

// array renders the rest of an array after its '['.
func (r *jsonbRenderer) array(s []byte) ([]byte, bool) {
	r.buf = append(r.buf, '[')
	if s = skipSpace(s); len(s) > 0 && s[0] == ']' {
		r.buf = append(r.buf, ']')
		return s[1:], true
	}
	for {
		var ok bool
		if s, ok = r.value(s); !ok {
			return nil, false
		}
		s = skipSpace(s)
		switch {
		case len(s) == 0:
			return nil, false
		case s[0] == ',':
			r.buf = append(r.buf, ", "...)
			s = s[1:]
		case s[0] == ']':
			r.buf = append(r.buf, ']')
			return s[1:], true
		default:
			return nil, false
		}
	}
}

// object renders the rest of an object after its '{': its members' values are rendered into
// r.buf in the order they come, then written back in jsonb's key order.
func (r *jsonbRenderer) object(s []byte) ([]byte, bool) {
	if s = skipSpace(s); len(s) > 0 && s[0] == '}' {
		r.buf = append(r.buf, "{}"...)
		return s[1:], true
	}
	start, p0, k0 := len(r.buf), len(r.pairs), len(r.keys)
	for {
		if s = skipSpace(s); len(s) == 0 || s[0] != '"' {
			return nil, false
		}
		var p jsonbPair
		var ok bool
		p.k0 = len(r.keys)
		if r.keys, s, ok = jsonbString(r.keys, s, false); !ok {
			return nil, false
		}
		p.k1 = len(r.keys)
		if s = skipSpace(s); len(s) == 0 || s[0] != ':' {
			return nil, false
		}
		p.v0 = len(r.buf)
		if s, ok = r.value(s[1:]); !ok {
			return nil, false
		}
		p.v1 = len(r.buf)
		r.pairs = append(r.pairs, p)
		s = skipSpace(s)
		if len(s) > 0 && s[0] == ',' {
			s = s[1:]
			continue
		}
		if len(s) == 0 || s[0] != '}' {
			return nil, false
		}
		s = s[1:]
		break
	}
	ps := r.pairs[p0:]
	key := func(p jsonbPair) []byte { return r.keys[p.k0:p.k1] }
	// jsonb's order: shorter keys first, then bytewise; stable, so the last of equal keys is
	// the last of its run, the one jsonb keeps.
	slices.SortStableFunc(ps, func(a, b jsonbPair) int {
		if la, lb := a.k1-a.k0, b.k1-b.k0; la != lb {
			return la - lb
		}
		return bytes.Compare(key(a), key(b))
	})
	r.tmp = append(r.tmp[:0], '{')
	for i, p := range ps {
		if i+1 < len(ps) && bytes.Equal(key(p), key(ps[i+1])) {
			continue
		}
		if len(r.tmp) > 1 {
			r.tmp = append(r.tmp, ", "...)
		}
		r.tmp = appendJSONBEscaped(r.tmp, key(p))
		r.tmp = append(r.tmp, ": "...)
		r.tmp = append(r.tmp, r.buf[p.v0:p.v1]...)
	}
	r.tmp = append(r.tmp, '}')
	r.buf = append(r.buf[:start], r.tmp...)
	r.pairs, r.keys = r.pairs[:p0], r.keys[:k0]
	return s, true
}

// jsonbString appends the string literal at the start of s (s[0] == '"') as jsonb holds it
// (decoded), or with escape as jsonb writes it (quoted and escaped again), and returns the
// rest of s. Not ok for what jsonb refuses or JSON does not allow.
func jsonbString(dst, s []byte, escape bool) (out, rest []byte, ok bool) {
	// Most strings hold no escape and no control character: jsonb writes them back as they are.
	if end, err := StringEnd(s, 0); err == nil && bytes.IndexByte(s[1:end-1], '\\') < 0 && printableUTF8(s[1:end-1]) {
		if escape {
			return append(dst, s[:end]...), s[end:], true
		}
		return append(dst, s[1:end-1]...), s[end:], true
	}
	if escape {
		dst = append(dst, '"')
	}
	start := 1
	for i := 1; i < len(s); {
		c := s[i]
		switch {
		case c == '"':
			dst = append(dst, s[start:i]...)
			if escape {
				dst = append(dst, '"')
			}
			return dst, s[i+1:], true
		case c < ' ':
			return nil, nil, false
		case c == '\\':
			dst = append(dst, s[start:i]...)
			if i+1 >= len(s) {
				return nil, nil, false
			}
			n := 2
			var ch rune
			switch e := s[i+1]; e {
			case '"', '\\', '/':
				ch = rune(e)
			case 'b':
				ch = '\b'
			case 'f':
				ch = '\f'
			case 'n':
				ch = '\n'
			case 'r':
				ch = '\r'
			case 't':
				ch = '\t'
			case 'u':
				ch, n = hex4(s[i:]), 6
				switch {
				case ch <= 0: // malformed, or \u0000, which jsonb refuses
					return nil, nil, false
				case utf16.IsSurrogate(ch):
					lo := hex4(s[i+6:])
					if ch >= 0xDC00 || lo < 0xDC00 || lo > 0xDFFF {
						return nil, nil, false // a surrogate that is not half of a pair
					}
					ch, n = utf16.DecodeRune(ch, lo), 12
				}
			default:
				return nil, nil, false
			}
			if escape {
				dst = appendJSONBRune(dst, ch)
			} else {
				dst = utf8.AppendRune(dst, ch)
			}
			i += n
			start = i
		case c < utf8.RuneSelf:
			i++
		default:
			ch, size := utf8.DecodeRune(s[i:])
			if ch == utf8.RuneError && size == 1 {
				return nil, nil, false
			}
			i += size
		}
	}
	return nil, nil, false
}

// printableUTF8 reports whether s is valid UTF-8 without control characters (below 0x20).
func printableUTF8(s []byte) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	i := 0
	// Eight bytes at a time while they are all ASCII at or above 0x20.
	for ; i+8 <= len(s); i += 8 {
		if x := binary.LittleEndian.Uint64(s[i:]); x&highs != 0 || (x-0x20*ones)&^x&highs != 0 {
			break
		}
	}
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < ' ' {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			return false
		}
		i += size
	}
	return true
}

// appendJSONBEscaped appends the decoded string s as jsonb writes it (Postgres's escape_json).
func appendJSONBEscaped[S ~string | ~[]byte](dst []byte, s S) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= ' ' && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		dst = appendJSONBRune(dst, rune(s[i]))
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendJSONBRune appends one decoded character as escape_json writes it.
func appendJSONBRune(dst []byte, ch rune) []byte {
	switch ch {
	case '"', '\\':
		return append(dst, '\\', byte(ch))
	case '\b':
		return append(dst, '\\', 'b')
	case '\f':
		return append(dst, '\\', 'f')
	case '\n':
		return append(dst, '\\', 'n')
	case '\r':
		return append(dst, '\\', 'r')
	case '\t':
		return append(dst, '\\', 't')
	}
	if ch < ' ' {
		return append(dst, '\\', 'u', '0', '0', hexDigits[ch>>4], hexDigits[ch&0xF])
	}
	return utf8.AppendRune(dst, ch)
}

// AppendJSONBString appends s (valid UTF-8 without NUL, as Postgres's text holds) as jsonb
// writes a text value: what jsonb_build_array renders for a text argument.
func AppendJSONBString(dst []byte, s string) []byte {
	return appendJSONBEscaped(dst, s)
}
