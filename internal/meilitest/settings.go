package meilitest

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strings"
)

// settingKeys are the index settings in the order GET /settings lists them.
var settingKeys = []string{
	"displayedAttributes", "searchableAttributes", "filterableAttributes", "sortableAttributes",
	"rankingRules", "stopWords", "nonSeparatorTokens", "separatorTokens", "dictionary",
	"synonyms", "distinctAttribute", "proximityPrecision", "typoTolerance", "faceting",
	"pagination", "embedders", "searchCutoffMs", "localizedAttributes", "facetSearch",
	"prefixSearch",
}

// optionalSettingKeys are accepted but only listed once set (they are experimental or recent).
var optionalSettingKeys = []string{"chat", "foreignKeys"}

var settingDefaults = map[string]json.RawMessage{
	"displayedAttributes":  json.RawMessage(`["*"]`),
	"searchableAttributes": json.RawMessage(`["*"]`),
	"filterableAttributes": json.RawMessage(`[]`),
	"sortableAttributes":   json.RawMessage(`[]`),
	"rankingRules":         json.RawMessage(`["words","typo","proximity","attribute","sort","exactness"]`),
	"stopWords":            json.RawMessage(`[]`),
	"nonSeparatorTokens":   json.RawMessage(`[]`),
	"separatorTokens":      json.RawMessage(`[]`),
	"dictionary":           json.RawMessage(`[]`),
	"synonyms":             json.RawMessage(`{}`),
	"distinctAttribute":    json.RawMessage(`null`),
	"proximityPrecision":   json.RawMessage(`"byWord"`),
	"typoTolerance":        json.RawMessage(`{"enabled":true,"minWordSizeForTypos":{"oneTypo":5,"twoTypos":9},"disableOnWords":[],"disableOnAttributes":[],"disableOnNumbers":false}`),
	"faceting":             json.RawMessage(`{"maxValuesPerFacet":100,"sortFacetValuesBy":{"*":"alpha"}}`),
	"pagination":           json.RawMessage(`{"maxTotalHits":1000}`),
	"embedders":            json.RawMessage(`{}`),
	"searchCutoffMs":       json.RawMessage(`null`),
	"localizedAttributes":  json.RawMessage(`null`),
	"facetSearch":          json.RawMessage(`true`),
	"prefixSearch":         json.RawMessage(`"indexingTime"`),
}

// settingRoutes maps the per-setting sub-routes to their key and the write method Meilisearch
// (and meilisearch-go) use for them.
var settingRoutes = []struct{ slug, key, method string }{
	{"displayed-attributes", "displayedAttributes", http.MethodPut},
	{"searchable-attributes", "searchableAttributes", http.MethodPut},
	{"filterable-attributes", "filterableAttributes", http.MethodPut},
	{"sortable-attributes", "sortableAttributes", http.MethodPut},
	{"ranking-rules", "rankingRules", http.MethodPut},
	{"stop-words", "stopWords", http.MethodPut},
	{"non-separator-tokens", "nonSeparatorTokens", http.MethodPut},
	{"separator-tokens", "separatorTokens", http.MethodPut},
	{"dictionary", "dictionary", http.MethodPut},
	{"synonyms", "synonyms", http.MethodPut},
	{"distinct-attribute", "distinctAttribute", http.MethodPut},
	{"proximity-precision", "proximityPrecision", http.MethodPut},
	{"typo-tolerance", "typoTolerance", http.MethodPatch},
	{"faceting", "faceting", http.MethodPatch},
	{"pagination", "pagination", http.MethodPatch},
	{"embedders", "embedders", http.MethodPatch},
	{"search-cutoff-ms", "searchCutoffMs", http.MethodPut},
	{"localized-attributes", "localizedAttributes", http.MethodPut},
	{"facet-search", "facetSearch", http.MethodPut},
	{"prefix-search", "prefixSearch", http.MethodPut},
	{"foreign-keys", "foreignKeys", http.MethodPut},
}

// mergedSettingKeys are object settings that PATCH merges field by field instead of replacing.
var mergedSettingKeys = map[string]bool{"typoTolerance": true, "faceting": true, "pagination": true, "embedders": true, "chat": true}

type settings struct {
	values map[string]json.RawMessage
}

func newSettings() *settings {
	s := &settings{values: make(map[string]json.RawMessage, len(settingDefaults))}
	for k, v := range settingDefaults {
		s.values[k] = v
	}
	return s
}

// marshal renders the settings object in Meilisearch's key order.
func (s *settings) marshal() []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	first := true
	for _, k := range append(append([]string{}, settingKeys...), optionalSettingKeys...) {
		v, ok := s.values[k]
		if !ok {
			continue
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		kb, _ := json.Marshal(k)
		b.Write(kb)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes()
}

// apply merges a validated patch; a null value resets the setting.
func (s *settings) apply(patch map[string]json.RawMessage) {
	for k, v := range patch {
		switch {
		case string(v) == "null":
			if def, ok := settingDefaults[k]; ok {
				s.values[k] = def
			} else {
				delete(s.values, k)
			}
		case mergedSettingKeys[k]:
			s.values[k] = mergeObjects(s.values[k], v)
		default:
			s.values[k] = compactCopy(v)
		}
	}
}

// mergeObjects overlays the members of patch on base; null members are removed.
func mergeObjects(base, patch json.RawMessage) json.RawMessage {
	m := map[string]json.RawMessage{}
	_ = json.Unmarshal(base, &m)
	var p map[string]json.RawMessage
	_ = json.Unmarshal(patch, &p)
	for k, v := range p {
		if string(v) == "null" {
			delete(m, k)
			continue
		}
		m[k] = v
	}
	out, _ := json.Marshal(m)
	return out
}

func isKnownSetting(k string) bool {
	_, ok := settingDefaults[k]
	return ok || k == "chat" || k == "foreignKeys"
}

// validateSettings checks a PATCH /settings body the way Meilisearch's deserializer does.
func validateSettings(patch map[string]json.RawMessage) *APIError {
	for _, k := range slices.Sorted(maps.Keys(patch)) {
		if !isKnownSetting(k) {
			return apiErrorf(CodeBadRequest, "Unknown field `%s`: expected one of `%s`", k, strings.Join(append(append([]string{}, settingKeys...), optionalSettingKeys...), "`, `"))
		}
		if err := validateSetting(k, patch[k]); err != nil {
			return err
		}
	}
	return nil
}

func validateSetting(key string, raw json.RawMessage) *APIError {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return apiErrorf(CodeBadRequest, "Json deserialize error: %v", err)
	}
	if v == nil {
		return nil
	}
	code := "invalid_settings_" + camelToSnake(key)
	bad := func(expected string) *APIError {
		return apiErrorf(code, "Invalid value type at `.%s`: expected %s, but found %s: `%s`", key, expected, describeValue(v), compactJSON(v))
	}
	switch key {
	case "displayedAttributes", "searchableAttributes", "sortableAttributes", "rankingRules",
		"stopWords", "nonSeparatorTokens", "separatorTokens", "dictionary":
		arr, ok := v.([]any)
		if !ok {
			return bad("an array")
		}
		for i, el := range arr {
			if _, ok := el.(string); !ok {
				return apiErrorf(code, "Invalid value type at `.%s[%d]`: expected a string, but found %s: `%s`", key, i, describeValue(el), compactJSON(el))
			}
		}
	case "filterableAttributes":
		arr, ok := v.([]any)
		if !ok {
			return bad("an array")
		}
		for i, el := range arr {
			switch e := el.(type) {
			case string:
			case map[string]any:
				if err := validateFilterRuleObject(e, i); err != nil {
					return err
				}
			default:
				return apiErrorf(code, "Invalid value type at `.filterableAttributes[%d]`: expected a string or an object, but found %s: `%s`", i, describeValue(el), compactJSON(el))
			}
		}
	case "synonyms":
		obj, ok := v.(map[string]any)
		if !ok {
			return bad("an object")
		}
		for word, list := range obj {
			arr, ok := list.([]any)
			if !ok {
				return apiErrorf(code, "Invalid value type at `.synonyms.%s`: expected an array, but found %s: `%s`", word, describeValue(list), compactJSON(list))
			}
			for _, el := range arr {
				if _, ok := el.(string); !ok {
					return apiErrorf(code, "Invalid value type at `.synonyms.%s`: expected a string, but found %s: `%s`", word, describeValue(el), compactJSON(el))
				}
			}
		}
	case "distinctAttribute":
		if _, ok := v.(string); !ok {
			return bad("a string")
		}
	case "typoTolerance", "faceting", "pagination", "embedders", "chat":
		if _, ok := v.(map[string]any); !ok {
			return bad("an object")
		}
	case "searchCutoffMs":
		f, ok := v.(float64)
		if !ok || f < 0 || f != float64(int64(f)) {
			return bad("a positive integer")
		}
	case "facetSearch":
		if _, ok := v.(bool); !ok {
			return bad("a boolean")
		}
	case "proximityPrecision":
		if s, _ := v.(string); s != "byWord" && s != "byAttribute" {
			return apiErrorf(code, "Unknown value `%v` at `.proximityPrecision`: expected one of `byWord`, `byAttribute`", v)
		}
	case "prefixSearch":
		if s, _ := v.(string); s != "indexingTime" && s != "disabled" {
			return apiErrorf(code, "Unknown value `%v` at `.prefixSearch`: expected one of `indexingTime`, `disabled`", v)
		}
	case "localizedAttributes", "foreignKeys":
		if _, ok := v.([]any); !ok {
			return bad("an array")
		}
	}
	return nil
}

func validateFilterRuleObject(obj map[string]any, i int) *APIError {
	const code = "invalid_settings_filterable_attributes"
	for k := range obj {
		if k != "attributePatterns" && k != "features" {
			return apiErrorf(code, "Unknown field `%s` inside `.filterableAttributes[%d]`: expected one of `attributePatterns`, `features`", k, i)
		}
	}
	pats, ok := obj["attributePatterns"].([]any)
	if !ok {
		return apiErrorf(code, "Missing field `attributePatterns` inside `.filterableAttributes[%d]`", i)
	}
	for _, p := range pats {
		if _, ok := p.(string); !ok {
			return apiErrorf(code, "Invalid value type at `.filterableAttributes[%d].attributePatterns`: expected a string, but found %s", i, describeValue(p))
		}
	}
	if f, ok := obj["features"]; ok {
		if _, ok := f.(map[string]any); !ok {
			return apiErrorf(code, "Invalid value type at `.filterableAttributes[%d].features`: expected an object, but found %s", i, describeValue(f))
		}
	}
	return nil
}

func camelToSnake(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= 'A' && r <= 'Z' {
			b.WriteByte('_')
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// describeValue names a decoded JSON value's type the way Meilisearch's errors do.
func describeValue(v any) string {
	switch t := v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case float64:
		if t >= 0 && t == float64(int64(t)) {
			return "a positive integer"
		}
		if t == float64(int64(t)) {
			return "a negative integer"
		}
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	default:
		return "an object"
	}
}

// decodeAny decodes a JSON value for an error message; an invalid value is nil.
func decodeAny(raw []byte) any {
	var v any
	_ = json.Unmarshal(raw, &v)
	return v
}

func compactJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
