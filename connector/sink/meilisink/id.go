package meilisink

import (
	"errors"
	"fmt"
	"strings"
)

// MaxIDBytes is the longest document id Meilisearch accepts.
const MaxIDBytes = 511

// escapeByte introduces an escape in an encoded id. Encoded ids start with it, and ids starting
// with it are never passed through unchanged, so the two sets cannot meet. Appwrite ids cannot
// start with '_' (they start with a letter or digit), so no real id pays for this rule.
const escapeByte = '_'

const hexDigits = "0123456789ABCDEF"

// plain reports whether c is kept as is inside an encoded id: every byte Meilisearch allows in
// an id except the escape byte itself.
func plain(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-'
}

// passesThrough reports whether id is its own encoding: a valid Meilisearch id (1 to 511 bytes
// of [A-Za-z0-9_-]) that does not start with the escape byte.
func passesThrough(id string) bool {
	if len(id) == 0 || len(id) > MaxIDBytes || id[0] == escapeByte {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !plain(c) && c != '_' {
			return false
		}
	}
	return true
}

// EncodeID turns an Appwrite id (or a shared index's "database/table/id") into a Meilisearch
// document id. Ids Meilisearch accepts are returned unchanged unless they start with '_';
// every other string s becomes "_" followed by s with each byte outside [A-Za-z0-9-] written
// as "_XX" (two upper-case hex digits): "a.b" → "_a_2Eb", "_x" → "__5Fx", "" → "_".
//
// The encoding is injective (two ids never share a document) and DecodeID reverses it. The
// result only uses bytes Meilisearch allows, but may exceed MaxIDBytes for ids far longer than
// Appwrite's 36 characters; ValidID tells.
func EncodeID(id string) string {
	if passesThrough(id) {
		return id
	}
	var b strings.Builder
	b.Grow(1 + len(id) + 8)
	b.WriteByte(escapeByte)
	for i := 0; i < len(id); i++ {
		c := id[i]
		if plain(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte(escapeByte)
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&0xF])
	}
	return b.String()
}

// ErrNotEncodedID is returned by DecodeID for strings EncodeID never produces.
var ErrNotEncodedID = errors.New("not an id produced by EncodeID")

// DecodeID returns the id whose encoding is s. It accepts exactly the strings EncodeID
// produces (the canonical form), so DecodeID(s) succeeds if and only if EncodeID of its result
// is s.
func DecodeID(s string) (string, error) {
	if s == "" || s[0] != escapeByte {
		if passesThrough(s) {
			return s, nil
		}
		return "", fmt.Errorf("%q: %w", s, ErrNotEncodedID)
	}
	out := make([]byte, 0, len(s))
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case plain(c):
			out = append(out, c)
		case c == escapeByte && i+2 < len(s) && isUpperHex(s[i+1]) && isUpperHex(s[i+2]):
			v := unhex(s[i+1])<<4 | unhex(s[i+2])
			if plain(v) {
				return "", fmt.Errorf("%q: escaped byte %q needs no escape: %w", s, v, ErrNotEncodedID)
			}
			out = append(out, v)
			i += 2
		default:
			return "", fmt.Errorf("%q: bad byte at %d: %w", s, i, ErrNotEncodedID)
		}
	}
	id := string(out)
	if passesThrough(id) {
		return "", fmt.Errorf("%q: %q is stored unencoded: %w", s, id, ErrNotEncodedID)
	}
	return id, nil
}

func isUpperHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'A' && c <= 'F' }

func unhex(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return c - 'A' + 10
}

// ValidID reports whether s is a document id Meilisearch accepts: 1 to 511 bytes of
// [A-Za-z0-9_-].
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > MaxIDBytes {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !plain(c) && c != '_' {
			return false
		}
	}
	return true
}
