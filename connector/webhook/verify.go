package webhook

import (
	"crypto/hmac"
	"crypto/sha1" // Appwrite signs with HMAC-SHA1; we verify, we do not choose the algorithm.
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strings"
	"sync"
)

// Verifier checks Appwrite webhook signatures for one configured webhook URL.
//
// Appwrite signs base64(HMAC-SHA1(key, URL + body)). The URL is the string stored in the
// webhook's settings, so the verifier is bound to that string, not to whatever a proxy
// forwards. Servers up to 1.9.6 sign rawurldecode(URL), newer ones the raw string; both are
// accepted so an Appwrite upgrade does not start failing deliveries. Several keys may be
// configured so a key can be rotated without dropping events.
//
// A Verifier is safe for concurrent use.
type Verifier struct {
	url string
	// forms are the URL strings a server may have signed: the configured string and, when it
	// differs, its rawurldecoded form.
	forms [][]byte
	nkeys int
	// macs pools one HMAC per key. crypto/hmac caches the keyed inner/outer state on its first
	// Reset, so a pooled HMAC costs no allocation and no key schedule per request. The URL is
	// re-hashed per request instead of being cached as a prefix state: that is one or two
	// SHA-1 blocks (~100 ns), and caching it would mean hand-rolling HMAC.
	macs sync.Pool
}

// macSet is the per-request scratch space of Verify.
type macSet struct {
	macs []hash.Hash
	sum  [sha1.Size]byte
}

// NewVerifier returns a Verifier for the webhook URL exactly as configured in Appwrite and the
// webhook's signing keys (the secret strings as shown by Appwrite; they are used as raw bytes,
// not hex-decoded).
func NewVerifier(url string, keys []string) (*Verifier, error) {
	if url == "" {
		return nil, errors.New("webhook url is empty: set it to the URL exactly as typed into Appwrite's webhook settings")
	}
	if len(keys) == 0 {
		return nil, errors.New("no signing keys: add the webhook's signature key from Appwrite's webhook settings")
	}
	var kb [][]byte
	seen := map[string]bool{}
	for i, k := range keys {
		if k == "" {
			return nil, fmt.Errorf("signing key %d is empty: an unset environment variable? every key must be the webhook's secret", i)
		}
		if seen[k] {
			continue // a duplicate would only cost another HMAC per request
		}
		seen[k] = true
		kb = append(kb, []byte(k))
	}
	v := &Verifier{url: url, forms: [][]byte{[]byte(url)}, nkeys: len(kb)}
	if dec := rawURLDecode(url); dec != url {
		v.forms = append(v.forms, []byte(dec))
	}
	v.macs.New = func() any {
		ms := &macSet{macs: make([]hash.Hash, len(kb))}
		for i, k := range kb {
			ms.macs[i] = hmac.New(sha1.New, k)
		}
		return ms
	}
	return v, nil
}

// Sign returns the X-Appwrite-Webhook-Signature Appwrite sends for body delivered to the
// webhook url signed with key: base64(HMAC-SHA1(key, url + body)). It is for senders that
// stand in for Appwrite (the demo, tests); Verify does not use it.
func Sign(url, key string, body []byte) string {
	m := hmac.New(sha1.New, []byte(key))
	m.Write([]byte(url))
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// URL returns the configured webhook URL the signatures are bound to.
func (v *Verifier) URL() string { return v.url }

// String describes the verifier without its keys, so that printing it by accident (%v in a
// log line) never leaks a secret.
func (v *Verifier) String() string {
	return fmt.Sprintf("webhook.Verifier{url: %q, keys: %d}", v.url, v.nkeys)
}

// GoString is String: %#v must not print the keys either.
func (v *Verifier) GoString() string { return v.String() }

// sigLen is the length of a standard base64 encoding of a SHA-1 digest, padding included.
var sigLen = base64.StdEncoding.EncodedLen(sha1.Size)

// strictBase64 accepts only the canonical encoding Appwrite produces (padding, zero trailing
// bits), so exactly one header value is valid per body.
var strictBase64 = base64.StdEncoding.Strict()

// Verify reports whether signature (the X-Appwrite-Webhook-Signature header) signs body (the
// raw request bytes, never a re-serialization) with one of the keys and one URL form. It
// returns nil, ErrMissingSignature or ErrInvalidSignature; the expected signature is never
// part of an error.
func (v *Verifier) Verify(signature string, body []byte) error {
	if signature == "" {
		return ErrMissingSignature
	}
	if len(signature) != sigLen {
		return ErrInvalidSignature
	}
	// Decode once, on the stack.
	var src [28]byte
	var got [21]byte // DecodedLen(28)
	copy(src[:], signature)
	n, err := strictBase64.Decode(got[:], src[:])
	if err != nil || n != sha1.Size {
		return ErrInvalidSignature
	}

	ms := v.macs.Get().(*macSet)
	defer func() {
		clear(ms.sum[:]) // do not leave an expected signature lying in pooled memory
		v.macs.Put(ms)
	}()
	for _, m := range ms.macs {
		for _, u := range v.forms {
			m.Reset()
			m.Write(u)
			m.Write(body)
			// Constant time: the comparison must not reveal how many leading bytes matched.
			// Returning at the first match only reveals which key/form matched, which is not
			// secret.
			if hmac.Equal(m.Sum(ms.sum[:0]), got[:sha1.Size]) {
				return nil
			}
		}
	}
	return ErrInvalidSignature
}

// rawURLDecode is PHP's rawurldecode: every "%XX" with two hex digits becomes that byte; a '%'
// not followed by two hex digits is kept as is; '+' is not a space. It decodes once ("%2541"
// becomes "%41").
func rawURLDecode(s string) string {
	i := strings.IndexByte(s, '%')
	if i < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	b = append(b, s[:i]...)
	for ; i < len(s); i++ {
		c := s[i]
		if c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
			continue
		}
		b = append(b, c)
	}
	return string(b)
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// CheckBasicAuth reports whether header (the Authorization header) carries HTTP Basic
// credentials equal to user and pass. Both fields are always compared, in constant time, over
// SHA-256 digests so that neither the content nor the length of the configured values leaks
// through timing.
func CheckBasicAuth(header string, user, pass string) bool {
	const prefix = "Basic "
	if len(header) < len(prefix) || !strings.EqualFold(header[:len(prefix)], prefix) {
		return false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(header[len(prefix):]))
	if err != nil {
		return false
	}
	gotUser, gotPass, ok := strings.Cut(string(raw), ":")
	if !ok {
		return false
	}
	return equalDigest(gotUser, user)&equalDigest(gotPass, pass) == 1
}

func equalDigest(a, b string) int {
	da, db := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(da[:], db[:])
}
