package meilitest

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFilterMatching(t *testing.T) {
	t.Parallel()
	doc := []byte(`{"id":"a","$id":"A.b","status":"Open","n":5,"tags":["x","Y"],"nested":{"k":1},"flag":true,"none":null,"empty":[]}`)
	cases := []struct {
		filter string
		want   bool
	}{
		{`"$id" = "a.b"`, true},
		{`'$id' = 'A.B'`, true},
		{`"$id" != "a.b"`, false},
		{`status = open`, true},
		{`status = "open "`, true},
		{`status IN [closed, OPEN]`, true},
		{`status NOT IN [closed, open]`, false},
		{`n = 5`, true},
		{`n = 5.0`, true},
		{`n > 4 AND n <= 5`, true},
		{`n 1 TO 4`, false},
		{`n 5 TO 9`, true},
		{`tags = y`, true},
		{`nested.k = 1`, true},
		{`flag = true`, true},
		{`missing != 1`, true},
		{`missing EXISTS`, false},
		{`none EXISTS`, true},
		{`none IS NULL`, true},
		{`none IS NOT NULL`, false},
		{`empty IS EMPTY`, true},
		{`status IS NOT EMPTY`, true},
		{`NOT (status = open OR n = 1)`, false},
		{`NOT NOT status = open`, true},
		{`n = 1 OR n = 2 OR (status = open AND flag = true)`, true},
		{`status = open AND (n < 3 OR "$id" = zzz)`, false},
	}
	for _, c := range cases {
		x, err := parseFilterString(c.filter)
		require.NoError(t, err, c.filter)
		require.Equal(t, c.want, x.match(doc), c.filter)
	}
}

func TestFilterSyntaxErrors(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		`hello`:               "Was expecting an operation `=`, `!=`, `>=`, `>`, `<=`, `<`, `IN`, `NOT IN`, `TO`, `EXISTS`, `NOT EXISTS`, `IS NULL`, `IS NOT NULL`, `IS EMPTY`, `IS NOT EMPTY`, `CONTAINS`, `NOT CONTAINS`, `STARTS WITH`, `NOT STARTS WITH`, `_geoRadius`, or `_geoBoundingBox` at `hello`.\n1:6 hello",
		`$id = "a.b"`:         "",
		`a = "x`:              "missing the following closing delimiter: `\"`",
		`(a = 1`:              "missing the following closing delimiter: `)`",
		`a IN x`:              "Expected `[` after `IN` keyword.",
		`a IN [x`:             "Expected matching `]`",
		`a = 1 b = 2`:         "Found unexpected characters at the end of the filter",
		`a = AND`:             "reserved keyword",
		`a = 1 and b = 2`:     "Found unexpected characters",
		`_geoRadius(1, 2, 3)`: "geo filters",
		`a =`:                 "Was expecting a value but instead got nothing.",
	}
	for filter, msg := range cases {
		_, err := parseFilterString(filter)
		require.Error(t, err, filter)
		require.Contains(t, err.Error(), msg, filter)
	}
	x, err := parseFilterString("   ")
	require.NoError(t, err)
	require.Nil(t, x)
}

func TestDocumentID(t *testing.T) {
	t.Parallel()
	valid := map[string]string{`"abc-_09"`: "abc-_09", `42`: "42", `-3`: "-3", `18446744073709551615`: "18446744073709551615", `"a\u0062"`: "ab"}
	for raw, want := range valid {
		id, ok := documentID([]byte(raw))
		require.True(t, ok, raw)
		require.Equal(t, want, id)
	}
	for _, raw := range []string{`"a.b"`, `""`, `1.0`, `1e3`, `true`, `null`, `{}`, `[]`, `"a b"`, `18446744073709551616`} {
		_, ok := documentID([]byte(raw))
		require.False(t, ok, raw)
	}
}

func TestMergeDocument(t *testing.T) {
	t.Parallel()
	got := mergeDocument([]byte(`{"id":1,"a":{"x":1},"b":2}`), []byte(`{"a":{"y":2},"c":null,"id":1}`))
	require.Equal(t, `{"id":1,"a":{"y":2},"b":2,"c":null}`, string(got))
}

func TestSplitJSONDocumentsCompacts(t *testing.T) {
	t.Parallel()
	docs, err := splitJSONDocuments([]byte(" [ {\"id\" : 1, \"s\": \"a b\\\" c\"} ,\n{\"id\":2} ] "))
	require.NoError(t, err)
	require.Equal(t, [][]byte{[]byte(`{"id":1,"s":"a b\" c"}`), []byte(`{"id":2}`)}, docs)
}
