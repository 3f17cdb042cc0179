package meilitest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// The document path works on raw JSON: a payload is validated once, split into one compact
// byte slice per document, and stored as such. Reads write the stored bytes as they are, and
// the few operations that need a field (the primary key) scan the top level of the
// object instead of decoding it. This keeps the add path at hundreds of MB/s.

func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isJSONSpace(b[i]) {
		i++
	}
	return i
}

// skipString returns the index just past the string literal starting at b[i] == '"'.
func skipString(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(b)
}

// skipValue returns the index just past the JSON value starting at b[i]. b must be valid.
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				j = skipString(b, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return len(b)
	default:
		j := i
		for j < len(b) && !isJSONSpace(b[j]) && b[j] != ',' && b[j] != '}' && b[j] != ']' {
			j++
		}
		return j
	}
}

// forEachField calls fn with the raw key (quotes included) and raw value of each top-level
// member of the valid JSON object obj, until fn returns false.
func forEachField(obj []byte, fn func(key, value []byte) bool) {
	i := skipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return
	}
	i++
	for {
		i = skipSpace(obj, i)
		if i >= len(obj) || obj[i] == '}' {
			return
		}
		if obj[i] == ',' {
			i++
			continue
		}
		ke := skipString(obj, i)
		key := obj[i:ke]
		i = skipSpace(obj, ke) + 1 // past ':'
		i = skipSpace(obj, i)
		ve := skipValue(obj, i)
		if !fn(key, obj[i:ve]) {
			return
		}
		i = ve
	}
}

// unquoteKey returns the Go string of a raw JSON string literal.
func unquoteKey(raw []byte) string {
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return string(inner)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return string(inner)
	}
	return s
}

// keyIs reports whether the raw JSON string literal raw spells name, without allocating in the
// common unescaped case.
func keyIs(raw []byte, name string) bool {
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return string(inner) == name
	}
	return unquoteKey(raw) == name
}

// lookupField returns the raw value of the top-level member name of obj.
func lookupField(obj []byte, name string) (value []byte, ok bool) {
	forEachField(obj, func(k, v []byte) bool {
		if keyIs(k, name) {
			value, ok = v, true
			return false
		}
		return true
	})
	return value, ok
}

// appendCompact appends src to dst without insignificant whitespace. src must be valid JSON.
func appendCompact(dst, src []byte) []byte {
	start := 0
	for j := 0; j < len(src); j++ {
		c := src[j]
		switch {
		case c == '"':
			j = skipString(src, j) - 1
		case isJSONSpace(c):
			dst = append(dst, src[start:j]...)
			start = j + 1
		}
	}
	return append(dst, src[start:]...)
}

// compactCopy returns a compact copy of the valid JSON value src that shares no memory with it,
// so stored documents never pin a whole request body.
func compactCopy(src []byte) []byte {
	return appendCompact(make([]byte, 0, len(src)), src)
}

var errNotObjects = errors.New("data are neither an object nor a list of objects")

// splitJSONDocuments validates a JSON payload (an object or an array of objects) and returns
// one compact, independent byte slice per document.
func splitJSONDocuments(body []byte) ([][]byte, error) {
	if !json.Valid(body) {
		var v any
		err := json.Unmarshal(body, &v)
		if err == nil {
			err = errors.New("invalid JSON")
		}
		return nil, err
	}
	i := skipSpace(body, 0)
	switch body[i] {
	case '{':
		return [][]byte{compactCopy(body[i:skipValue(body, i)])}, nil
	case '[':
	default:
		return nil, errNotObjects
	}
	var docs [][]byte
	i++
	for {
		i = skipSpace(body, i)
		if body[i] == ']' {
			return docs, nil
		}
		if body[i] == ',' {
			i++
			continue
		}
		end := skipValue(body, i)
		if body[i] != '{' {
			return nil, fmt.Errorf("invalid type: %s, expected a map at document %d", describeJSON(body[i:end]), len(docs))
		}
		docs = append(docs, compactCopy(body[i:end]))
		i = end
	}
}

// describeJSON renders a JSON value the way serde describes an unexpected type.
func describeJSON(raw []byte) string {
	switch raw[0] {
	case '"':
		return "string " + string(raw)
	case '[':
		return "sequence"
	case 't', 'f':
		return "boolean `" + string(raw) + "`"
	case 'n':
		return "null"
	default:
		return "number `" + string(raw) + "`"
	}
}
