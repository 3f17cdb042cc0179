package webhook

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector"
)

// referencePayload reads the $ fields with encoding/json: the slow, obviously right way that
// readPayload must agree with.
func referencePayload(body []byte) (payload, bool) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil || m == nil {
		return payload{}, false
	}
	str := func(k string) (string, bool) {
		raw, ok := m[k]
		if !ok || string(raw) == "null" {
			return "", true
		}
		var s string
		return s, json.Unmarshal(raw, &s) == nil
	}
	var p payload
	ok := true
	for k, dst := range map[string]*string{"$id": &p.ID, "$databaseId": &p.DatabaseID, "$tableId": &p.TableID,
		"$collectionId": &p.CollectionID, "$updatedAt": &p.UpdatedAt} {
		v, good := str(k)
		*dst, ok = v, ok && good
	}
	if raw, has := m["$sequence"]; has {
		var n json.Number
		if json.Unmarshal(raw, &n) == nil && (raw[0] == '-' || '0' <= raw[0] && raw[0] <= '9') {
			p.Sequence = string(raw)
		} else {
			v, good := str("$sequence")
			p.Sequence, ok = v, ok && good
		}
	}
	return p, ok
}

func TestReadPayload(t *testing.T) {
	t.Parallel()
	cases := map[string]payload{
		`{}`: {},
		` { "$id" : "r1" , "$sequence" : -12.5e3 , "$updatedAt":"t" } `: {ID: "r1", Sequence: "-12.5e3", UpdatedAt: "t"},
		`{"a":"}\"{","$id":"r1"}`:                                        {ID: "r1"},
		`{"a":"\\","$id":"r1"}`:                                          {ID: "r1"},
		`{"a":"\\\"$id\":\"x","$id":"r1"}`:                               {ID: "r1"},
		`{"nested":{"$id":"n","deeper":[{"$id":"m"},"]"]},"$id":"r1"}`:   {ID: "r1"},
		`{"$id":"r1","$id":"r2"}`:                                        {ID: "r2"},
		`{"\u0024id":"r1","$ID":"no","$Id":"no"}`:                        {ID: "r1"},
		`{"$id":"r\u00e91","$tableId":"a\/b"}`:                           {ID: "r\u00e91", TableID: "a/b"},
		`{"$databaseId":null,"$sequence":null,"$id":"r"}`:                {ID: "r"},
		`{"$sequence":"0195c7e4-6b1f-7cc3"}`:                             {Sequence: "0195c7e4-6b1f-7cc3"},
		`{"$collection":"database_1_collection_2","$tenant":7,"x":true}`: {},
		"{\"$id\":\"r1\",\n\t\"views\":5}":                               {ID: "r1"},
	}
	for in, want := range cases {
		got, err := readPayload([]byte(in))
		require.NoError(t, err, in)
		hash, err := connector.ContentHash([]byte(in))
		require.NoError(t, err, in)
		assert.Equal(t, hash, got.Hash, "the content hash of %s", in)
		got.Hash = nil
		assert.Equal(t, want, got, in)
		ref, ok := referencePayload([]byte(in))
		require.True(t, ok, in)
		assert.Equal(t, ref, got, "agrees with encoding/json: %s", in)
	}
	for _, in := range []string{``, `{`, `{"$id":"r1"`, `{"$id":"r1"}x`, `[]`, `"s"`, `1`, `null`, `{"$id":}`} {
		_, err := readPayload([]byte(in))
		assert.Error(t, err, in)
	}
}

// checkPayloadAgainstReference is shared with FuzzDecode.
func checkPayloadAgainstReference(t *testing.T, body []byte) {
	got, err := readPayload(body)
	ref, ok := referencePayload(body)
	if !utf8.Valid(body) {
		return // encoding/json replaces invalid UTF-8 in strings; ids with it are rejected later anyway
	}
	if (err == nil) != ok {
		t.Fatalf("readPayload err=%v, reference ok=%v for %q", err, ok, body)
	}
	if err != nil {
		return
	}
	if want, herr := connector.ContentHash(body); herr != nil || !bytes.Equal(got.Hash, want) {
		t.Fatalf("readPayload hash %x, ContentHash %x (%v) for %q", got.Hash, want, herr, body)
	}
	got.Hash = nil
	if !reflect.DeepEqual(got, ref) {
		t.Fatalf("readPayload %+v, reference %+v for %q", got, ref, body)
	}
}
