package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/appwrite-sync/appwrite-sync/connector/webhook"
	"github.com/appwrite-sync/appwrite-sync/internal/testcert"
)

// good has 15 lines: a key appended to it starts on line 16.

func TestTLSConfigOffByDefaultAndLoaded(t *testing.T) {
	c, err := Parse("config.yaml", []byte(good), fullEnv)
	require.NoError(t, err)
	require.False(t, c.TLS.Enabled(), "plain HTTP unless tls is set")
	require.False(t, c.Admin.TLS.Enabled())

	dir := t.TempDir()
	pub := testcert.Write(t, dir, "pub-")
	adm := testcert.Write(t, dir, "admin-")
	text := strings.Replace(good, "  token: \"${TOKEN}\"\n", "  token: \"${TOKEN}\"\n  tls: {cert_file: admin-cert.pem, key_file: admin-key.pem}\n", 1) +
		"tls:\n  cert_file: " + pub.CertFile + "\n  key_file: " + pub.KeyFile + "\n"
	c, err = Parse(filepath.Join(dir, "config.yaml"), []byte(text), fullEnv)
	require.NoError(t, err)
	require.Equal(t, TLS{CertFile: pub.CertFile, KeyFile: pub.KeyFile}, c.TLS)
	require.Equal(t, TLS{CertFile: adm.CertFile, KeyFile: adm.KeyFile}, c.Admin.TLS, "relative paths are relative to the config file")
	require.True(t, c.TLS.Enabled())
	require.True(t, c.Admin.TLS.Enabled())
}

func TestTLSConfigErrorsNameLineAndFix(t *testing.T) {
	dir := t.TempDir()
	a := testcert.Write(t, dir, "a-")
	b := testcert.Write(t, dir, "b-")
	notPEM := filepath.Join(dir, "notes.txt")
	require.NoError(t, os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600))
	missing := filepath.Join(dir, "missing.pem")

	cases := []struct {
		name, text string
		want       []string
	}{
		{"only cert_file", good + "tls:\n  cert_file: " + a.CertFile + "\n",
			[]string{"config.yaml:17: tls: key_file is missing: TLS needs both cert_file and key_file; set both cert_file and key_file (PEM files), or remove tls to serve plain HTTP"}},
		{"only key_file on the admin listener", strings.Replace(good, "  token: \"${TOKEN}\"\n", "  token: \"${TOKEN}\"\n  tls: {key_file: "+a.KeyFile+"}\n", 1),
			[]string{"config.yaml:5: admin.tls: cert_file is missing: TLS needs both cert_file and key_file; set both cert_file and key_file (PEM files), or remove admin.tls to serve plain HTTP"}},
		{"missing file", good + "tls:\n  cert_file: " + missing + "\n  key_file: " + a.KeyFile + "\n",
			[]string{"config.yaml:17: tls.cert_file: cannot read cert_file: no such file or directory (got \"" + missing + "\"); point cert_file at a readable PEM file"}},
		{"missing key file", good + "tls:\n  cert_file: " + a.CertFile + "\n  key_file: " + missing + "\n",
			[]string{"config.yaml:18: tls.key_file: cannot read key_file: no such file or directory"}},
		{"key of another certificate", good + "tls:\n  cert_file: " + a.CertFile + "\n  key_file: " + b.KeyFile + "\n",
			[]string{"config.yaml:17: tls: cert_file and key_file are not a usable key pair: private key does not match public key; cert_file must hold the PEM certificate"}},
		{"not PEM", good + "tls:\n  cert_file: " + notPEM + "\n  key_file: " + a.KeyFile + "\n",
			[]string{"config.yaml:17: tls: cert_file and key_file are not a usable key pair: failed to find any PEM data in certificate input"}},
		{"swapped files", good + "tls: {cert_file: " + a.KeyFile + ", key_file: " + a.CertFile + "}\n",
			[]string{"config.yaml:16: tls: cert_file and key_file are not a usable key pair"}},
		{"unknown key", good + "tls:\n  certfile: " + a.CertFile + "\n  key_file: " + a.KeyFile + "\n",
			[]string{`config.yaml:17: tls.certfile: unknown key "certfile"; did you mean "cert_file"?`, "tls: cert_file is missing"}},
		{"both listeners wrong at once", strings.Replace(good, "  token: \"${TOKEN}\"\n", "  token: \"${TOKEN}\"\n  tls: {cert_file: "+missing+", key_file: "+a.KeyFile+"}\n", 1) + "tls: {cert_file: " + a.CertFile + "}\n",
			[]string{"config.yaml:5: admin.tls.cert_file: cannot read cert_file", "config.yaml:17: tls: key_file is missing"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			msg := parseErr(t, c.text, fullEnv)
			for _, w := range c.want {
				require.Contains(t, msg, w)
			}
			require.NotContains(t, msg, "BEGIN", "no file content in messages")
		})
	}
}

func TestTLSConfigPathFromEnvIsRedacted(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "secret-location", "cert.pem")
	e := env(map[string]string{"TOKEN": "0123456789abcdef-token", "SECRET": "s3cr3t-signing-key",
		"DATABASE_URL": "postgres://u:hunter2pw@localhost:5432/db", "CERT": missing, "KEY": missing})
	msg := parseErr(t, good+"tls: {cert_file: \"${CERT}\", key_file: \"${KEY}\"}\n", e)
	require.Contains(t, msg, `config.yaml:16: tls.cert_file: cannot read cert_file: no such file or directory (got "<from environment, redacted>")`)
	require.NotContains(t, msg, "secret-location")
}

func TestRateLimitConfigDefaultsAndValues(t *testing.T) {
	c, err := Parse("config.yaml", []byte(good), fullEnv)
	require.NoError(t, err)
	require.Equal(t, float64(0), c.Limits.RatePerSource, "the rate limit is off by default")
	require.Equal(t, webhook.RateBurstDefault, c.Limits.Burst)
	require.Empty(t, c.Limits.TrustedProxies, "no proxy is trusted by default")

	c, err = Parse("config.yaml", []byte(good+"limits:\n  rate_per_source: 2.5\n  burst: 10\n  trusted_proxies: [10.0.0.0/8, 192.0.2.7, \"::1\", \"fd00::/8\"]\n"), fullEnv)
	require.NoError(t, err)
	require.Equal(t, 2.5, c.Limits.RatePerSource)
	require.Equal(t, 10, c.Limits.Burst)
	require.Equal(t, []string{"10.0.0.0/8", "192.0.2.7", "::1", "fd00::/8"}, c.Limits.TrustedProxies)
	require.Equal(t, int64(webhook.MaxBodyBytesDefault), c.Limits.MaxBodyBytes, "other limits keep their defaults")
}

func TestRateLimitConfigErrors(t *testing.T) {
	msg := parseErr(t, good+"limits:\n  rate_per_source: -1\n  burst: 0\n  trusted_proxies:\n    - 10.0.0.0/8\n    - 10.0.0.300\n    - proxy.internal\n", fullEnv)
	require.Contains(t, msg, `config.yaml:17: limits.rate_per_source: must be a non-negative number (got "-1"); write requests per second per client IP`)
	require.Contains(t, msg, `config.yaml:18: limits.burst: must be positive (got "0")`)
	require.Contains(t, msg, `config.yaml:21: limits.trusted_proxies[1]: not an IP address or CIDR (got "10.0.0.300")`)
	require.Contains(t, msg, `config.yaml:22: limits.trusted_proxies[2]: not an IP address or CIDR (got "proxy.internal")`)
	require.NotContains(t, msg, "trusted_proxies[0]")

	msg = parseErr(t, good+"limits: {rate_per_source: fast, rate_per_sourc: 1}\n", fullEnv)
	require.Contains(t, msg, `config.yaml:16: limits.rate_per_source: must be a non-negative number (got "fast")`)
	require.Contains(t, msg, `limits.rate_per_sourc: unknown key "rate_per_sourc"; did you mean "rate_per_source"?`)
}
