package meilisink

import (
	"encoding/json"
	"strconv"

	"github.com/appwrite-sync/appwrite-sync/internal/rawjson"
	"github.com/appwrite-sync/appwrite-sync/mapping"
)

// appendDocument appends the JSON of a projected document. Documents are built from decoded
// rows (strings, json.Number, bools, nil, []any, map[string]any) plus []string roles; those
// are written without reflection or key sorting (Meilisearch does not care about key order),
// which makes encoding a 10,000-row batch several times cheaper than json.Marshal. Anything
// else falls back to json.Marshal.
func appendDocument(b []byte, doc map[string]any) ([]byte, error) {
	return appendValue(b, doc)
}

func appendValue(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return appendString(b, x), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	case json.Number:
		if !mapping.IsJSONNumber(string(x)) {
			return nil, &json.UnsupportedValueError{Str: "invalid number " + strconv.Quote(string(x))}
		}
		return append(b, x...), nil
	case map[string]any:
		b = append(b, '{')
		first := true
		for k, e := range x {
			if !first {
				b = append(b, ',')
			}
			first = false
			b = appendString(b, k)
			b = append(b, ':')
			var err error
			if b, err = appendValue(b, e); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	case []any:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendValue(b, e); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case []string:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, e)
		}
		return append(b, ']'), nil
	default:
		m, err := json.Marshal(x)
		if err != nil {
			return nil, err
		}
		return append(b, m...), nil
	}
}

// appendString writes s as a JSON string the way encoding/json does without HTML escaping.
func appendString(b []byte, s string) []byte { return rawjson.AppendString(b, s, false) }
