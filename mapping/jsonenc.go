package mapping

import (
	"encoding/json"
	"slices"
	"strconv"

	"github.com/appwrite-sync/appwrite-sync/internal/rawjson"
)

// appendJSON appends the JSON text of a decoded row value, byte for byte what json.Marshal
// writes (sorted keys, HTML-safe escaping), without reflection: jsonb columns are on the hot
// path. Values of other types fall back to json.Marshal.
func appendJSON(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	case string:
		return rawjson.AppendString(b, x, true), nil
	case json.Number:
		if x == "" {
			return append(b, '0'), nil
		}
		if !IsJSONNumber(string(x)) {
			return nil, errNotNumber
		}
		return append(b, x...), nil
	case []any:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendJSON(b, e); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = rawjson.AppendString(b, k, true)
			b = append(b, ':')
			var err error
			if b, err = appendJSON(b, x[k]); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	}
	j, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, j...), nil
}
