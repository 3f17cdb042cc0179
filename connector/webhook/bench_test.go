package webhook

import (
	"strings"
	"testing"
)

// benchInput is a realistic delivery: the ~1 KiB row fixture, its openssl signature and a
// 42-string events header as Appwrite 1.9.5 sends it for that row.
func benchInput(b *testing.B) (*Verifier, string, string, []byte) {
	b.Helper()
	tc := loadSignatureCases(b)[0]
	v, err := NewVerifier(tc.ConfiguredURL, tc.Keys)
	if err != nil {
		b.Fatal(err)
	}
	var events string
	for _, ec := range loadEventsCases(b) {
		if ec.Name == "1.9.5 tables update (42)" {
			events = strings.ReplaceAll(ec.Header, "row1", "post.2026.03.26")
		}
	}
	if events == "" {
		b.Fatal("events fixture missing")
	}
	return v, tc.Signature, events, readBodyFixture(b, tc.Body)
}

func BenchmarkVerifyDecode(b *testing.B) {
	v, sig, events, body := benchInput(b)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if err := v.Verify(sig, body); err != nil {
			b.Fatal(err)
		}
		if _, err := Decode(events, body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	v, sig, _, body := benchInput(b)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if err := v.Verify(sig, body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	_, _, events, body := benchInput(b)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(events, body); err != nil {
			b.Fatal(err)
		}
	}
}
