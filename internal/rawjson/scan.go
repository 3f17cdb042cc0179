package rawjson

import (
	"bytes"
	"errors"
	"fmt"
)

// ErrMalformed is returned by the scanners for input that is not structurally JSON.
var ErrMalformed = errors.New("malformed JSON")

// The scanners below split JSON without decoding or fully validating it: they find where a
// value ends (strings, nesting) so a page of rows can be cut into rows and a row's few
// top-level fields read without a full encoding/json pass per step. Every row read this way
// is fully parsed once anyway (ContentHash rejects invalid JSON), so validating here again
// would only repeat that work.

func wsAt(s []byte, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

// StringEnd returns the index after the string literal starting at s[i] == '"' (escapes
// are skipped, not checked), or ErrMalformed when it is not terminated.
func StringEnd(s []byte, i int) (int, error) {
	// Fast path: the closing quote with no backslash before it (most strings), found with
	// bytes.IndexByte's vectorised search instead of a byte loop.
	if q := bytes.IndexByte(s[i+1:], '"'); q >= 0 && bytes.IndexByte(s[i+1:i+1+q], '\\') < 0 {
		return i + q + 2, nil
	}
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			j++
		case '"':
			return j + 1, nil
		}
	}
	return 0, ErrMalformed
}

// valueEnd returns the index after the JSON value starting at s[i] (no leading space).
func valueEnd(s []byte, i int) (int, error) {
	if i >= len(s) {
		return 0, ErrMalformed
	}
	switch s[i] {
	case '"':
		return StringEnd(s, i)
	case '{', '[':
		var arr [32]byte
		stack := arr[:0] // expected closers; grows past 32 levels
		for j := i; j < len(s); j++ {
			switch c := s[j]; c {
			case '"':
				end, err := StringEnd(s, j)
				if err != nil {
					return 0, err
				}
				j = end - 1
			case '{', '[':
				stack = append(stack, c+2) // '{'+2 == '}', '['+2 == ']'
			case '}', ']':
				if len(stack) == 0 || stack[len(stack)-1] != c {
					return 0, ErrMalformed
				}
				stack = stack[:len(stack)-1]
				if len(stack) == 0 {
					return j + 1, nil
				}
			}
		}
		return 0, ErrMalformed
	default: // number or literal: up to the next delimiter
		j := i
		for j < len(s) {
			c := s[j]
			if c == ',' || c == '}' || c == ']' || c == ' ' || c == '\t' || c == '\n' || c == '\r' {
				break
			}
			j++
		}
		if j == i {
			return 0, ErrMalformed
		}
		return j, nil
	}
}

// EachMember calls fn with the raw key (without quotes, escapes undecoded) and raw value of
// each top-level member of the JSON object obj, in order. It stops at fn's first error.
func EachMember(obj []byte, fn func(key, value []byte) error) error {
	i := wsAt(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return ErrMalformed
	}
	i = wsAt(obj, i+1)
	if i < len(obj) && obj[i] == '}' {
		return nil
	}
	for {
		if i >= len(obj) || obj[i] != '"' {
			return ErrMalformed
		}
		kend, err := StringEnd(obj, i)
		if err != nil {
			return err
		}
		key := obj[i+1 : kend-1]
		i = wsAt(obj, kend)
		if i >= len(obj) || obj[i] != ':' {
			return ErrMalformed
		}
		i = wsAt(obj, i+1)
		vend, err := valueEnd(obj, i)
		if err != nil {
			return err
		}
		if err := fn(key, obj[i:vend]); err != nil {
			return err
		}
		i = wsAt(obj, vend)
		if i >= len(obj) {
			return ErrMalformed
		}
		switch obj[i] {
		case '}':
			return nil
		case ',':
			i = wsAt(obj, i+1)
		default:
			return ErrMalformed
		}
	}
}

// EachElement calls fn with each raw element of the JSON array arr, in order.
func EachElement(arr []byte, fn func(value []byte) error) error {
	i := wsAt(arr, 0)
	if i >= len(arr) || arr[i] != '[' {
		return ErrMalformed
	}
	i = wsAt(arr, i+1)
	if i < len(arr) && arr[i] == ']' {
		return nil
	}
	for {
		end, err := valueEnd(arr, i)
		if err != nil {
			return err
		}
		if err := fn(arr[i:end]); err != nil {
			return err
		}
		i = wsAt(arr, end)
		if i >= len(arr) {
			return ErrMalformed
		}
		switch arr[i] {
		case ']':
			return nil
		case ',':
			i = wsAt(arr, i+1)
		default:
			return ErrMalformed
		}
	}
}

// JSONString decodes a raw value as EachMember and EachElement hand it out, where a string is
// expected: ok is false for an absent (empty) or null value, another type is an error.
// Strings without escapes are sliced, not decoded; escaped ones go through Unescape.
func String(raw []byte) (s string, ok bool, err error) {
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return "", false, nil
	case raw[0] != '"' || len(raw) < 2:
		return "", false, fmt.Errorf("not a string: %.40s", raw)
	case bytes.IndexByte(raw, '\\') < 0:
		return string(raw[1 : len(raw)-1]), true, nil
	}
	dec, bad := Unescape(nil, raw[1:len(raw)-1])
	if bad >= 0 {
		return "", false, fmt.Errorf("invalid string: %.40s", raw)
	}
	return string(dec), true, nil
}
