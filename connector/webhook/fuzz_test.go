package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/appwrite-sync/appwrite-sync/connector"
)

// FuzzDecode: no input may panic, and every outcome is one of the three documented ones. A
// success must be self-consistent: the event is exactly the row event built from the ids.
func FuzzDecode(f *testing.F) {
	f.Add("databases.main.tables.posts.rows.r1.update,databases.*", []byte(`{"$id":"r1","$databaseId":"main","$tableId":"posts","$updatedAt":"2026-03-26T10:00:00.123+00:00","$sequence":1}`))
	f.Add("databases.a.b.collections.c.documents.d.e.create", []byte(`{"$id":"d.e","$collectionId":"c","$updatedAt":"2026-03-26T10:00:00Z","$sequence":"9"}`))
	f.Add("tablesdb.x.tables.y.rows.z.delete", []byte(`{"$id":"z","$updatedAt":"2026-03-26T10:00:00.000+05:30","$sequence":null}`))
	f.Add("databases.a.tables.b.tables.c.rows.r.upsert", []byte(`{"$id":"r","$updatedAt":"2026-03-26T10:00:00.000+00:00"}`))
	f.Add("users.u1.create", []byte(`{}`))
	f.Add("", []byte(`null`))
	f.Add("databases.main.tables.posts.rows.r1.increment", []byte(`[`))
	f.Add("databases.main.tables.posts.rows.r1.update", []byte(`{"$id":"r1","$sequence":{"x":1}}`))
	f.Add("databases.main.tables.posts.rows.r1.update", []byte(`{"a":"\\\"}","\u0024id":"r1","$ID":"x","n":{"$id":"n"}}`))
	f.Fuzz(func(t *testing.T, events string, body []byte) {
		checkPayloadAgainstReference(t, body)
		ch, err := Decode(events, body)
		// Classification must be the exact one, whichever path Decode took.
		if event := FirstEvent(events); event != "" && !rowEventShape.MatchString(event) && !errors.Is(err, ErrNotRowEvent) {
			t.Fatalf("%q is not row-shaped but was not ignored: %v", event, err)
		} else if rowEventShape.MatchString(event) && errors.Is(err, ErrNotRowEvent) {
			t.Fatalf("%q is row-shaped but was ignored", event)
		}
		if err != nil {
			var de *DecodeError
			if !errors.Is(err, ErrNotRowEvent) && !errors.As(err, &de) {
				t.Fatalf("undocumented error %T: %v", err, err)
			}
			if de != nil && de.Reason == "" {
				t.Fatal("a DecodeError needs a reason")
			}
			return
		}
		if !connector.ValidID(ch.Key.Database) || !connector.ValidID(ch.Key.Table) || ch.RowID == "" {
			t.Fatalf("invalid ids in %+v", ch.Key)
		}
		if ch.Op != connector.OpUpsert && ch.Op != connector.OpDelete {
			t.Fatalf("op %v", ch.Op)
		}
		built := []string{
			"databases." + ch.Key.Database + ".tables." + ch.Key.Table + ".rows." + ch.RowID + "." + ch.Action,
			"databases." + ch.Key.Database + ".collections." + ch.Key.Table + ".documents." + ch.RowID + "." + ch.Action,
			"tablesdb." + ch.Key.Database + ".tables." + ch.Key.Table + ".rows." + ch.RowID + "." + ch.Action,
		}
		found := false
		for _, b := range built {
			found = found || b == ch.Event
		}
		if !found {
			t.Fatalf("event %q is not the row event of %+v/%q", ch.Event, ch.Key, ch.RowID)
		}
		if want, err := connector.ContentHash(body); err != nil || !bytes.Equal(ch.Hash, want) || !json.Valid(body) {
			t.Fatalf("change of a body that is not one valid JSON object, or with the wrong hash (%v): %q", err, body)
		}
		if ch.Event != FirstEvent(events) || string(ch.Row) != string(body) || ch.UpdatedAt.Location().String() != "UTC" {
			t.Fatalf("change does not reflect its input: %+v", ch)
		}
	})
}

// FuzzVerify: no input may panic, nothing but the two sentinels comes back, and a forged
// signature does not verify.
func FuzzVerify(f *testing.F) {
	f.Add("https://sync.example.com/webhooks/appwrite", "key", "LHfE2RTXeHy1/fIaCM5O8jbrWy4=", []byte(`{"$id":"r1"}`))
	f.Add("https://h/a%20b%zz%4", "k", "", []byte(nil))
	f.Add("https://h/%2541+", "k", "AAAAAAAAAAAAAAAAAAAAAAAAAAA=", []byte(`{}`))
	f.Add("https://h/x", "k", "====", []byte(`x`))
	f.Fuzz(func(t *testing.T, url, key, sig string, body []byte) {
		v, err := NewVerifier(url, []string{key})
		if err != nil {
			if url != "" && key != "" {
				t.Fatalf("NewVerifier(%q, %q): %v", url, key, err)
			}
			return
		}
		err = v.Verify(sig, body)
		switch {
		case err == nil:
			if sig != Sign(url, key, body) && sig != Sign(rawURLDecode(url), key, body) {
				t.Fatalf("accepted a signature that is not the HMAC of either URL form")
			}
		case errors.Is(err, ErrMissingSignature):
			if sig != "" {
				t.Fatal("missing reported for a present signature")
			}
		case !errors.Is(err, ErrInvalidSignature):
			t.Fatalf("undocumented error %v", err)
		}
		// The real signature always verifies, whatever the URL holds.
		if v.Verify(Sign(url, key, body), body) != nil || v.Verify(Sign(rawURLDecode(url), key, body), body) != nil {
			t.Fatal("a correct signature was rejected")
		}
	})
}
