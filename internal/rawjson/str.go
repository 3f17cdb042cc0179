package rawjson

import (
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// Hand-written mirrors of encoding/json's string decoding and encoding, shared by the content
// hash (internal/canonjson) and the row decoder and document encoder (mapping). Fuzz tests in
// rawjson, canonjson and mapping hold them to encoding/json.

// Unescape appends the decoded contents of raw (the bytes between a JSON string's quotes)
// to dst exactly as encoding/json decodes them (its unquoteBytes): escapes resolved, a \u
// surrogate pair joined, a lone surrogate and each byte of invalid UTF-8 replaced by U+FFFD.
// bad is -1, or the offset in raw of the first thing a JSON string cannot hold: a control
// character, a quote, or the backslash of an unknown escape or a short \u.
//
// Appwrite's payloads are PHP's json_encode, which writes every non-ASCII character as \u
// and every / as \/: with encoding/json doing this, hashing such a row cost three times a
// plain one.
func Unescape(dst, raw []byte) (out []byte, bad int) {
	for r := 0; r < len(raw); {
		c := raw[r]
		switch {
		case c == '\\':
			if r+1 >= len(raw) {
				return dst, r
			}
			switch e := raw[r+1]; e {
			case '"', '\\', '/':
				dst = append(dst, e)
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case 'u':
				rr := hex4(raw[r:])
				if rr < 0 {
					return dst, r
				}
				r += 6
				if utf16.IsSurrogate(rr) {
					if dec := utf16.DecodeRune(rr, hex4(raw[r:])); dec != unicode.ReplacementChar {
						r += 6
						dst = utf8.AppendRune(dst, dec)
						continue
					}
					rr = unicode.ReplacementChar
				}
				dst = utf8.AppendRune(dst, rr)
				continue
			default:
				return dst, r
			}
			r += 2
		case c == '"' || c < ' ':
			return dst, r
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			r++
		default:
			rr, size := utf8.DecodeRune(raw[r:])
			dst = utf8.AppendRune(dst, rr) // invalid UTF-8 becomes U+FFFD
			r += size
		}
	}
	return dst, -1
}

// hex4 is the rune of the \uXXXX escape at the start of s, or -1 if there is none.
func hex4(s []byte) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range s[2:6] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string escaped like encoding/json (its appendString):
// quotes, backslashes and control characters (\b \f \n \r \t short, the others \u00XX),
// invalid UTF-8 as \ufffd, U+2028/U+2029, and with escapeHTML also <, > and & (json.Marshal's
// default; an Encoder with SetEscapeHTML(false) leaves them).
func AppendString[S ~string | ~[]byte](b []byte, s S, escapeHTML bool) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && (!escapeHTML || (c != '<' && c != '>' && c != '&')) {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(string(s[i:min(i+utf8.UTFMax, len(s))]))
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
