package mapping

import (
	"encoding/json"
	"errors"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/appwrite-sync/appwrite-sync/internal/rawjson"
)

// pgType is a warehouse column type.
type pgType uint8

const (
	tText pgType = iota + 1
	tBigint
	tInteger
	tDouble
	tNumeric
	tBoolean
	tTimestamptz
	tDate
	tJSONB
	tTextArray
	tBigintArray
)

// pgTypes maps each supported type, as written in DDL, to its kind.
var pgTypes = map[string]pgType{
	"text":             tText,
	"bigint":           tBigint,
	"integer":          tInteger,
	"double precision": tDouble,
	"numeric":          tNumeric,
	"boolean":          tBoolean,
	"timestamptz":      tTimestamptz,
	"date":             tDate,
	"jsonb":            tJSONB,
	"text[]":           tTextArray,
	"bigint[]":         tBigintArray,
}

// typeNames lists the supported types in documentation order.
var typeNames = []string{"text", "bigint", "integer", "double precision", "numeric", "boolean",
	"timestamptz", "date", "jsonb", "text[]", "bigint[]"}

// typeAliases are common spellings of supported types, answered with the canonical name.
var typeAliases = map[string]string{
	"int8": "bigint", "int4": "integer", "int": "integer", "float8": "double precision",
	"double": "double precision", "float": "double precision", "bool": "boolean",
	"decimal": "numeric", "timestamp with time zone": "timestamptz", "json": "jsonb",
	"timestamp": "timestamptz", "varchar": "text", "string": "text", "int8[]": "bigint[]",
	"_text": "text[]", "_int8": "bigint[]", "text []": "text[]", "bigint []": "bigint[]",
	"varchar[]": "text[]", "string[]": "text[]",
}

// normalizeType lower-cases a type and collapses blanks ("Double  Precision" → "double precision").
func normalizeType(s string) string {
	return strings.Join(strings.Fields(strings.ToLower(s)), " ")
}

// convError is why a value does not convert; the caller adds the column and the value.
type convError string

func (e convError) Error() string { return string(e) }

const (
	errNotNumber   = convError("not a number")
	errNotWhole    = convError("not a whole number")
	errNotBool     = convError("not true or false")
	errNotString   = convError("an object or a list is not text; use jsonb, or map a nested path")
	errNotList     = convError("not a list")
	errNUL         = convError("contains a NUL character, which Postgres text cannot store")
	errNULJSON     = convError(`contains \u0000, which Postgres jsonb cannot store`)
	errNotTime     = convError("not a datetime like 2026-03-26T10:00:00.123+00:00")
	errNoOffset    = convError("a datetime without a UTC offset names no instant")
	errNotDate     = convError("not a date like 2026-03-26 or a datetime")
	errOutOfRange  = convError("out of range")
	errNumericSize = convError("out of the range of Postgres numeric")
)

// convert turns a non-null JSON value into the Go value pgx encodes into typ.
func convert(typ pgType, v any) (any, error) {
	switch typ {
	case tText:
		if s, ok := v.(string); ok && strings.IndexByte(s, 0) < 0 {
			return v, nil // already a boxed string: no new allocation
		}
		return toText(v)
	case tBigint:
		return toInt(v, math.MinInt64, math.MaxInt64)
	case tInteger:
		i, err := toInt(v, math.MinInt32, math.MaxInt32)
		if err != nil {
			return nil, err
		}
		return int32(i), nil
	case tDouble:
		return toFloat(v)
	case tNumeric:
		return toNumeric(v)
	case tBoolean:
		return toBool(v)
	case tTimestamptz:
		return toTime(v)
	case tDate:
		return toDate(v)
	case tJSONB:
		return toJSONB(v)
	case tTextArray:
		return toTextArray(v)
	case tBigintArray:
		return toBigintArray(v)
	}
	return nil, convError("unsupported type")
}

// numText returns the decimal text of a JSON number (or of a string holding one).
func numText(v any) (string, error) {
	switch x := v.(type) {
	case json.Number:
		if !IsJSONNumber(string(x)) {
			return "", errNotNumber
		}
		return string(x), nil
	case string:
		if !IsJSONNumber(x) {
			return "", errNotNumber
		}
		return x, nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return "", errNotNumber
		}
		return strconv.FormatFloat(x, 'g', -1, 64), nil
	case int:
		return strconv.Itoa(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	}
	return "", errNotNumber
}

// IsJSONNumber reports whether s follows the JSON number grammar
// (-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?), which Postgres also accepts.
func IsJSONNumber(s string) bool {
	n := rawjson.NumberLen(s)
	return n > 0 && n == len(s)
}

func toInt(v any, lo, hi int64) (int64, error) {
	s, err := numText(v)
	if err != nil {
		return 0, err
	}
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		if i < lo || i > hi {
			return 0, errOutOfRange
		}
		return i, nil
	} else if errors.Is(err, strconv.ErrRange) {
		return 0, errOutOfRange
	}
	// A fraction or an exponent: accept it only when the value is whole ("5.0", "1e3").
	if !numericInRange(s) {
		return 0, errOutOfRange
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return 0, errNotNumber
	}
	if !r.IsInt() {
		return 0, errNotWhole
	}
	n := r.Num()
	if !n.IsInt64() || n.Int64() < lo || n.Int64() > hi {
		return 0, errOutOfRange
	}
	return n.Int64(), nil
}

func toFloat(v any) (float64, error) {
	if f, ok := v.(float64); ok && !math.IsNaN(f) && !math.IsInf(f, 0) {
		return f, nil
	}
	s, err := numText(v)
	if err != nil {
		return 0, err
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, errOutOfRange
	}
	return f, nil
}

// toNumeric returns validated decimal text: pgx sends a Go string in text format, which
// Postgres parses into numeric exactly (no float rounding).
func toNumeric(v any) (string, error) {
	s, err := numText(v)
	if err != nil {
		return "", err
	}
	if !numericInRange(s) {
		return "", errNumericSize
	}
	return s, nil
}

// numericInRange reports whether a JSON number fits Postgres numeric: at most 131072 digits
// before the decimal point and 16383 after. It also keeps big.Rat away from huge exponents.
func numericInRange(s string) bool {
	mant, exp := s, 0
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		mant = s[:i]
		e, err := strconv.Atoi(s[i+1:])
		if err != nil || e > 1<<20 || e < -(1<<20) {
			return false
		}
		exp = e
	}
	mant = strings.TrimPrefix(mant, "-")
	intPart, frac, _ := strings.Cut(mant, ".")
	intPart = strings.TrimLeft(intPart, "0")
	frac = strings.TrimRight(frac, "0")
	if intPart == "" && strings.Trim(frac, "0") == "" {
		return true // zero
	}
	before := len(intPart) + exp
	after := len(frac) - exp
	return before <= 131072 && after <= 16383
}

func toBool(v any) (bool, error) {
	switch x := v.(type) {
	case bool:
		return x, nil
	case string:
		switch x {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
	}
	return false, errNotBool
}

func toText(v any) (string, error) {
	switch x := v.(type) {
	case string:
		if strings.IndexByte(x, 0) >= 0 {
			return "", errNUL
		}
		return x, nil
	case bool:
		if x {
			return "true", nil
		}
		return "false", nil
	case json.Number, float64, int, int64:
		return numText(x)
	}
	return "", errNotString
}

func toTime(v any) (time.Time, error) {
	s, ok := v.(string)
	if !ok {
		return time.Time{}, errNotTime
	}
	return ParseTime(s)
}

// toDate takes the calendar date as written: "2026-03-26", or the date part of a datetime in
// its own offset. The result is midnight UTC of that date, which pgx encodes as the date.
func toDate(v any) (time.Time, error) {
	s, ok := v.(string)
	if !ok {
		return time.Time{}, errNotDate
	}
	if len(s) == 10 {
		t, err := time.Parse(time.DateOnly, s)
		if err != nil {
			return time.Time{}, errNotDate
		}
		return t, nil
	}
	t, err := ParseTime(s)
	if err != nil {
		return time.Time{}, errNotDate
	}
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC), nil
}

// toJSONB returns the value's JSON text as json.RawMessage, which pgx sends verbatim as jsonb.
func toJSONB(v any) (json.RawMessage, error) {
	b, err := appendJSON(make([]byte, 0, 128), v)
	if err != nil {
		return nil, convError("cannot be written as JSON")
	}
	if hasNULEscape(b) {
		return nil, errNULJSON
	}
	return json.RawMessage(b), nil
}

// hasNULEscape reports whether JSON text holds the escape \u0000 (and not an escaped
// backslash followed by "u0000").
func hasNULEscape(b []byte) bool {
	for i := 0; i+6 <= len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		if string(b[i:i+6]) == `\u0000` {
			return true
		}
		i++ // skip the escaped character, so `\\u0000` is not a match
	}
	return false
}

// toTextArray converts a JSON list to []string, or to []*string when it holds nulls (pgx
// writes a nil element as a NULL array element).
func toTextArray(v any) (any, error) { return toArray(v, toText) }

// toBigintArray converts a JSON list to []int64, or to []*int64 when it holds nulls.
func toBigintArray(v any) (any, error) {
	return toArray(v, func(e any) (int64, error) { return toInt(e, math.MinInt64, math.MaxInt64) })
}

// toArray converts a JSON list with conv, element by element, to []T, or to []*T when it
// holds nulls (a nil pointer is a NULL element); []T without nulls saves the pointers.
func toArray[T any](v any, conv func(any) (T, error)) (any, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, errNotList
	}
	out := make([]T, len(list))
	var nulls []bool
	for i, e := range list {
		if e == nil {
			if nulls == nil {
				nulls = make([]bool, len(list))
			}
			nulls[i] = true
			continue
		}
		x, err := conv(e)
		if err != nil {
			return nil, elemError(i, err)
		}
		out[i] = x
	}
	if nulls == nil {
		return out, nil
	}
	ptrs := make([]*T, len(list))
	for i := range out {
		if !nulls[i] {
			ptrs[i] = &out[i]
		}
	}
	return ptrs, nil
}

func elemError(i int, err error) error {
	return convError("element " + strconv.Itoa(i) + ": " + err.Error())
}
