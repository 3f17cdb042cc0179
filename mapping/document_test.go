package mapping

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// decodeNumbers decodes JSON the way the sink's input is decoded (numbers kept verbatim).
func decodeNumbers(t testing.TB, b []byte) any {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%q is not JSON: %v", b, err)
	}
	return v
}

func TestAppendDocumentMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	doc := map[string]any{
		"id": "_a_2Eb", "$id": "a.b", "s": "quote\" backslash\\ nl\n tab\t ctl\x01 del\x7f é 🎉 \u2028\u2029 bad\xff end",
		"n": json.Number("-1.5e+10"), "i": json.Number("0"), "t": true, "f": false, "z": nil,
		"arr": []any{json.Number("1"), "x", nil, []any{}, map[string]any{}}, "obj": map[string]any{"k": map[string]any{"deep": "v"}},
		"roles": []string{"any", "user:1"}, "other": 3.25,
	}
	got, err := AppendDocument(nil, doc)
	require.NoError(t, err)
	want, err := json.Marshal(doc)
	require.NoError(t, err)
	require.True(t, json.Valid(got), "%s", got)
	require.Equal(t, decodeNumbers(t, want), decodeNumbers(t, got))

	_, err = AppendDocument(nil, map[string]any{"n": json.Number("1e")})
	require.Error(t, err, "an invalid number is refused, as json.Marshal does")

	// A document leaves HTML characters as they are; a jsonb value escapes them as json.Marshal.
	got, err = AppendDocument(nil, map[string]any{"h": "<a&b>", "r": []string{"<x>"}})
	require.NoError(t, err)
	require.Contains(t, string(got), `"h":"<a&b>"`)
	j, err := appendJSON(nil, map[string]any{"h": "<a&b>", "r": []string{"<x>"}})
	require.NoError(t, err)
	require.Equal(t, `{"h":"\u003ca\u0026b\u003e","r":["\u003cx\u003e"]}`, string(j))
}

// FuzzAppendDocument: any row the mapping decodes encodes to valid JSON meaning the same as
// json.Marshal's output.
func FuzzAppendDocument(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":"b\u0000c","n":1.5e3,"x":[null,true,{"y":"\ud800"}]}`, `{"s":"\u2028\"\\"}`, "{\"bad\":\"\xff\xfe\"}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		row, err := DecodeRow(raw)
		if err != nil {
			return
		}
		got, err := AppendDocument(nil, row)
		if err != nil {
			t.Fatalf("AppendDocument(%q): %v", raw, err)
		}
		want, err := json.Marshal(map[string]any(row))
		if err != nil {
			t.Fatal(err)
		}
		if !json.Valid(got) {
			t.Fatalf("AppendDocument(%q) = %q: not JSON", raw, got)
		}
		g, w := decodeNumbers(t, got), decodeNumbers(t, want)
		gb, _ := json.Marshal(g)
		wb, _ := json.Marshal(w)
		if !bytes.Equal(gb, wb) {
			t.Fatalf("AppendDocument(%q) = %s, json.Marshal = %s", raw, got, want)
		}
	})
}
