package webhook

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// signatureCase is one entry of testdata/signatures.json, computed with openssl by
// testdata/gen-signatures.sh (never by the Go code under test).
type signatureCase struct {
	Name          string   `json:"name"`
	ConfiguredURL string   `json:"configured_url"`
	Keys          []string `json:"keys"`
	SignedURL     string   `json:"signed_url"`
	Key           string   `json:"key"`
	Body          string   `json:"body"`
	Signature     string   `json:"signature"`
	Valid         bool     `json:"valid"`
}

func loadSignatureCases(t testing.TB) []signatureCase {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "signatures.json"))
	require.NoError(t, err)
	var cases []signatureCase
	require.NoError(t, json.Unmarshal(raw, &cases))
	require.NotEmpty(t, cases)
	return cases
}

func readBodyFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "bodies", name))
	require.NoError(t, err)
	return b
}

func TestVerifyFixtures(t *testing.T) {
	t.Parallel()
	for _, tc := range loadSignatureCases(t) {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			v, err := NewVerifier(tc.ConfiguredURL, tc.Keys)
			require.NoError(t, err)
			err = v.Verify(tc.Signature, readBodyFixture(t, tc.Body))
			if tc.Valid {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, ErrInvalidSignature)
			}
		})
	}
}

// Sign writes what openssl computed for every valid fixture, so the demo and the tests that
// sign with it sign as Appwrite does.
func TestSignMatchesTheFixtures(t *testing.T) {
	t.Parallel()
	n := 0
	for _, tc := range loadSignatureCases(t) {
		if !tc.Valid {
			continue
		}
		n++
		require.Equal(t, tc.Signature, Sign(tc.SignedURL, tc.Key, readBodyFixture(t, tc.Body)), tc.Name)
	}
	require.NotZero(t, n)
}

// TestVerifyMutations signs nothing itself: it takes valid openssl fixtures and changes one
// thing at a time (Svix style); every change must be rejected.
func TestVerifyMutations(t *testing.T) {
	t.Parallel()
	var valid []signatureCase
	for _, tc := range loadSignatureCases(t) {
		if tc.Valid {
			valid = append(valid, tc)
		}
	}
	require.NotEmpty(t, valid)

	reserialize := func(b []byte) []byte {
		var v any
		require.NoError(t, json.Unmarshal(b, &v))
		out, err := json.Marshal(v)
		require.NoError(t, err)
		return out
	}
	mutations := map[string]func(sig string, body []byte) (string, []byte){
		"one body byte changed": func(sig string, body []byte) (string, []byte) {
			b := append([]byte(nil), body...)
			b[len(b)/2] ^= 0x01
			return sig, b
		},
		"byte appended": func(sig string, body []byte) (string, []byte) {
			return sig, append(append([]byte(nil), body...), ' ')
		},
		"last byte dropped": func(sig string, body []byte) (string, []byte) { return sig, body[:len(body)-1] },
		"re-serialized json (go encoding, not php)": func(sig string, body []byte) (string, []byte) {
			return sig, reserialize(body)
		},
		"empty body": func(sig string, _ []byte) (string, []byte) { return sig, nil },
		"signature bit flipped": func(sig string, body []byte) (string, []byte) {
			raw, _ := base64.StdEncoding.DecodeString(sig)
			raw[0] ^= 0x80
			return base64.StdEncoding.EncodeToString(raw), body
		},
		"signature without padding": func(sig string, body []byte) (string, []byte) {
			return strings.TrimRight(sig, "="), body
		},
		"signature url-safe alphabet": func(sig string, body []byte) (string, []byte) {
			raw, _ := base64.StdEncoding.DecodeString(sig)
			s := base64.URLEncoding.EncodeToString(raw)
			if s == sig { // no '+' or '/' in this one: force a difference
				s = "-" + s[1:]
			}
			return s, body
		},
		"signature hex instead of base64": func(sig string, body []byte) (string, []byte) {
			raw, _ := base64.StdEncoding.DecodeString(sig)
			return fmt.Sprintf("%x", raw), body
		},
		"signature with trailing space": func(sig string, body []byte) (string, []byte) { return sig + " ", body },
	}
	for _, tc := range valid {
		v, err := NewVerifier(tc.ConfiguredURL, tc.Keys)
		require.NoError(t, err)
		body := readBodyFixture(t, tc.Body)
		require.NoError(t, v.Verify(tc.Signature, body), tc.Name)
		for name, mutate := range mutations {
			sig, b := mutate(tc.Signature, body)
			assert.ErrorIs(t, v.Verify(sig, b), ErrInvalidSignature, "%s / %s", tc.Name, name)
		}
	}
}

// TestVerifyReserializedDiffers guards the mutation above: Go's re-encoding of a PHP body
// really is different bytes (otherwise "rejected" would prove nothing).
func TestVerifyReserializedDiffers(t *testing.T) {
	t.Parallel()
	body := readBodyFixture(t, "row.json")
	var v any
	require.NoError(t, json.Unmarshal(body, &v))
	out, err := json.Marshal(v)
	require.NoError(t, err)
	require.NotEqual(t, string(body), string(out))
	require.Contains(t, string(body), `\/`)
	require.Contains(t, string(body), `\u00e9`)
}

func TestVerifyMissingSignature(t *testing.T) {
	t.Parallel()
	v, err := NewVerifier("https://sync.example.com/webhooks/appwrite", []string{"k"})
	require.NoError(t, err)
	require.ErrorIs(t, v.Verify("", []byte(`{}`)), ErrMissingSignature)
}

func TestVerifyBothURLFormsWithOneKeyList(t *testing.T) {
	t.Parallel()
	// One configured URL, two servers: the old one signs the decoded form, the new one the raw
	// form. Both fixtures must pass against the very same Verifier.
	var raw, decoded *signatureCase
	cases := loadSignatureCases(t)
	for i := range cases {
		switch cases[i].Name {
		case "encoded url signed raw (newer appwrite)":
			raw = &cases[i]
		case "encoded url signed rawurldecoded (appwrite <= 1.9.6)":
			decoded = &cases[i]
		}
	}
	require.NotNil(t, raw)
	require.NotNil(t, decoded)
	require.Equal(t, raw.ConfiguredURL, decoded.ConfiguredURL)
	require.NotEqual(t, raw.Signature, decoded.Signature)
	v, err := NewVerifier(raw.ConfiguredURL, raw.Keys)
	require.NoError(t, err)
	body := readBodyFixture(t, raw.Body)
	require.NoError(t, v.Verify(raw.Signature, body))
	require.NoError(t, v.Verify(decoded.Signature, body))
}

func TestNewVerifierErrors(t *testing.T) {
	t.Parallel()
	_, err := NewVerifier("", []string{"k"})
	require.ErrorContains(t, err, "url is empty")
	_, err = NewVerifier("https://h/x", nil)
	require.ErrorContains(t, err, "no signing keys")
	_, err = NewVerifier("https://h/x", []string{"k", ""})
	require.ErrorContains(t, err, "signing key 1 is empty")
}

func TestVerifierForms(t *testing.T) {
	t.Parallel()
	v, err := NewVerifier("https://h/plain", []string{"k", "k"})
	require.NoError(t, err)
	assert.Len(t, v.forms, 1, "no escapes: one form, one HMAC per key")
	assert.Equal(t, 1, v.nkeys, "duplicate keys are kept once")

	v, err = NewVerifier("https://h/a%20b", []string{"k"})
	require.NoError(t, err)
	require.Len(t, v.forms, 2)
	assert.Equal(t, "https://h/a%20b", string(v.forms[0]))
	assert.Equal(t, "https://h/a b", string(v.forms[1]))
}

func TestVerifierNeverPrintsKeys(t *testing.T) {
	t.Parallel()
	const key = "s3cr3t-signing-key-value"
	v, err := NewVerifier("https://h/x", []string{key})
	require.NoError(t, err)
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		out := fmt.Sprintf(format, v)
		assert.NotContains(t, out, key, format)
		assert.Contains(t, out, "https://h/x", format)
	}
	ep := Endpoint{Name: "w", URL: "https://h/x", Verifier: v, BasicUser: "u", BasicPass: "hunter2-pass"}
	for _, format := range []string{"%v", "%+v", "%s"} {
		assert.NotContains(t, fmt.Sprintf(format, ep), "hunter2-pass", format)
	}
}

func TestVerifyDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race")
	}
	cases := loadSignatureCases(t)
	tc := cases[0]
	require.True(t, tc.Valid)
	v, err := NewVerifier(tc.ConfiguredURL, tc.Keys)
	require.NoError(t, err)
	body := readBodyFixture(t, tc.Body)
	require.NoError(t, v.Verify(tc.Signature, body)) // warm the pool
	allocs := testing.AllocsPerRun(200, func() {
		if v.Verify(tc.Signature, body) != nil {
			panic("fixture no longer verifies")
		}
	})
	// The pool may be emptied by a GC during the run; on average it stays near zero.
	assert.LessOrEqual(t, allocs, 1.0)
}

func TestRawURLDecode(t *testing.T) {
	t.Parallel()
	// Expected values follow PHP's php_raw_url_decode: %XX with two hex digits (either case)
	// becomes the byte, anything else is copied, '+' is not touched, and it runs once.
	cases := map[string]string{
		"":                    "",
		"no-escapes":          "no-escapes",
		"a%20b":               "a b",
		"a+b":                 "a+b",
		"%2F%2f":              "//",
		"%2541":               "%41",
		"%":                   "%",
		"%4":                  "%4",
		"%4g":                 "%4g",
		"%%41":                "%A",
		"100%":                "100%",
		"a%2":                 "a%2",
		"%C3%A9":              "\u00e9",
		"%00":                 "\x00",
		"%zz%41":              "%zzA",
		"https://h/p?q=a%26b": "https://h/p?q=a&b",
	}
	for in, want := range cases {
		assert.Equal(t, want, rawURLDecode(in), "rawurldecode(%q)", in)
	}
}

func TestCheckBasicAuth(t *testing.T) {
	t.Parallel()
	basic := func(s string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(s)) }
	cases := []struct {
		name   string
		header string
		want   bool
	}{
		{"right", basic("appwrite:p@ss:word"), true},
		{"scheme is case-insensitive", "basic " + base64.StdEncoding.EncodeToString([]byte("appwrite:p@ss:word")), true},
		{"wrong password", basic("appwrite:p@ss:wordX"), false},
		{"wrong user", basic("appwritE:p@ss:word"), false},
		{"password prefix", basic("appwrite:p@ss"), false},
		{"empty", "", false},
		{"no colon", basic("appwrite"), false},
		{"bearer", "Bearer " + base64.StdEncoding.EncodeToString([]byte("appwrite:p@ss:word")), false},
		{"not base64", "Basic !!!", false},
		{"swapped", basic("p@ss:word:appwrite"), false},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.want, CheckBasicAuth(tc.header, "appwrite", "p@ss:word"), tc.name)
	}
}
