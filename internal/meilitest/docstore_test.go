package meilitest

import (
	"testing"

	"github.com/stretchr/testify/require"
)

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

func TestSplitJSONDocumentsCompacts(t *testing.T) {
	t.Parallel()
	docs, err := splitJSONDocuments([]byte(" [ {\"id\" : 1, \"s\": \"a b\\\" c\"} ,\n{\"id\":2} ] "))
	require.NoError(t, err)
	require.Equal(t, [][]byte{[]byte(`{"id":1,"s":"a b\" c"}`), []byte(`{"id":2}`)}, docs)
}
