package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/appwrite-sync/appwrite-sync/connector"
	"github.com/appwrite-sync/appwrite-sync/connector/audit"
	"github.com/appwrite-sync/appwrite-sync/connector/webhook"
	"github.com/appwrite-sync/appwrite-sync/internal/yamlnode"
)

// hooks are what the struct tags of Config name: redactions, checks of decoded values (each
// with the problem and its fix), and decoders of the values no plain type describes. Set in
// init: the decoders of nested mappings use them too.
var hooks yamlnode.Hooks

func init() { hooks = newHooks() }

func newHooks() yamlnode.Hooks {
	return yamlnode.Hooks{
		Redact: map[string]func(string) string{"secret": hideSecret, "dsn": Redact},
		Check: map[string]func(v any) (string, string){
			"positive": func(v any) (string, string) {
				if n := v.(int); n <= 0 || n > 1<<31 {
					return "must be positive", "use a positive number"
				}
				return "", ""
			},
			"parallel_pages": func(v any) (string, string) {
				switch n := v.(int); {
				case n <= 0 || n > 1<<31:
					return "must be positive", "use a positive number"
				case n > 64:
					return "too many parallel requests", "use 1 to 64 (each is one concurrent request to Appwrite)"
				}
				return "", ""
			},
			"bytes": func(v any) (string, string) {
				if asInt64(v) <= 0 {
					return "must be positive", "use a positive number of bytes"
				}
				return "", ""
			},
			"body_budget": func(v any) (string, string) {
				if v.(int64) <= 0 {
					return "must be positive", "use a positive number of bytes, at least limits.max_body_bytes; or leave it out for a quarter of memory_limit"
				}
				return "", ""
			},
			"body_wait": func(v any) (string, string) {
				if v.(time.Duration) <= 0 {
					return "must be positive", "use a positive duration, e.g. 10s (Appwrite waits 15 s for an answer)"
				}
				return "", ""
			},
			"positive_duration": func(v any) (string, string) {
				if v.(time.Duration) <= 0 {
					return "must be positive", "use a positive duration such as 1m, or remove the key for the default"
				}
				return "", ""
			},
			"spool_max_bytes": func(v any) (string, string) {
				if v.(int64) < 1<<20 {
					return "too small", "use at least 1048576 (1 MiB); a change takes about its body's size"
				}
				return "", ""
			},
			"max_rows": func(v any) (string, string) {
				if v.(int64) < 0 {
					return "must not be negative", "use a number of requests, or 0 for no cap"
				}
				return "", ""
			},
			"log_level": func(v any) (string, string) {
				if !oneOf(v.(string), "debug", "info", "warn", "error") {
					return "unknown log level", "use debug, info, warn or error"
				}
				return "", ""
			},
			"log_format": func(v any) (string, string) {
				if !oneOf(v.(string), "auto", "json", "text") {
					return "unknown log format", "use auto, json or text"
				}
				return "", ""
			},
			"table": func(v any) (string, string) {
				if !identRe.MatchString(v.(string)) {
					return "invalid table name", "use letters, digits and _ (max 63), starting with a letter or _"
				}
				return "", ""
			},
			"schema": func(v any) (string, string) {
				if !identRe.MatchString(v.(string)) {
					return "invalid schema name", "use letters, digits and _ (max 63), starting with a letter or _"
				}
				return "", ""
			},
		},
		Decode: map[string]func(d *yamlnode.Node, n *yaml.Node, path string, dst any){
			"tls": func(d *yamlnode.Node, n *yaml.Node, path string, dst any) { *dst.(*TLS) = decodeTLS(d, n, path) },
			"webhooks": func(d *yamlnode.Node, n *yaml.Node, path string, dst any) {
				*dst.(*[]Webhook) = decodeWebhooks(d, n, path)
			},
			"memory_limit": decodeMemoryLimit,
			"rate":         decodeRate,
			"proxies":      decodeProxies,
			"webhook_ids":  decodeWebhookIDs,
			"audit_events": decodeAuditEvents,
		},
	}
}

func asInt64(v any) int64 {
	if n, ok := v.(int); ok {
		return int64(n)
	}
	return v.(int64)
}

func oneOf(s string, opts ...string) bool {
	for _, o := range opts {
		if s == o {
			return true
		}
	}
	return false
}

// decodeRate decodes limits.rate_per_source: requests per second, fractions allowed.
func decodeRate(d *yamlnode.Node, n *yaml.Node, path string, dst any) {
	var v float64
	var err error
	if n.Kind == yaml.ScalarNode {
		v, err = strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64)
	}
	if n.Kind != yaml.ScalarNode || err != nil || v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		d.Errorf(n, path, "write requests per second per client IP, e.g. 50 or 0.5; 0 turns the limit off", "must be a non-negative number")
		return
	}
	*dst.(*float64) = v
}

// decodeProxies decodes limits.trusted_proxies: IPs and CIDRs.
func decodeProxies(d *yamlnode.Node, n *yaml.Node, path string, dst any) {
	list := d.StringList(n, path)
	for i, p := range list {
		if _, err := netip.ParsePrefix(p); err == nil {
			continue
		}
		if _, err := netip.ParseAddr(p); err == nil {
			continue
		}
		at := n
		if n.Kind == yaml.SequenceNode && i < len(n.Content) {
			at = n.Content[i]
		}
		d.Errorf(at, fmt.Sprintf("%s[%d]", path, i), "write the IP or CIDR of your reverse proxy or load balancer, e.g. 10.0.0.0/8 or 192.0.2.10", "not an IP address or CIDR")
	}
	*dst.(*[]string) = list
}

// decodeWebhookIDs decodes reconcile.webhook_ids.
func decodeWebhookIDs(d *yamlnode.Node, n *yaml.Node, path string, dst any) {
	ids := d.StringList(n, path)
	for i, id := range ids {
		if strings.TrimSpace(id) == "" {
			d.Errorf(n, fmt.Sprintf("%s[%d]", path, i), "copy the webhook id from the Appwrite console (Settings → Webhooks), or remove the entry", "empty webhook id")
		}
	}
	*dst.(*[]string) = ids
}

// decodeAuditEvents decodes audit.events: Appwrite event strings (audit.ValidatePattern).
func decodeAuditEvents(d *yamlnode.Node, n *yaml.Node, path string, dst any) {
	list := d.StringList(n, path)
	for i, p := range list {
		var pe *audit.PatternError
		if err := audit.ValidatePattern(p); errors.As(err, &pe) {
			at := n
			if n.Kind == yaml.SequenceNode && i < len(n.Content) {
				at = n.Content[i]
			}
			d.Errorf(at, fmt.Sprintf("%s[%d]", path, i), pe.Fix, "%s", pe.Problem)
		}
	}
	*dst.(*[]string) = list
}

// keyNode is the key node of key in mapping n (for a message about the key itself).
func keyNode(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i]
		}
	}
	return nil
}

// memoryUnits are the suffixes memory_limit accepts: GOMEMLIMIT's binary units.
var memoryUnits = map[string]uint{"": 0, "B": 0, "KiB": 10, "MiB": 20, "GiB": 30}

// decodeMemoryLimit decodes memory_limit (see memoryLimit).
func decodeMemoryLimit(d *yamlnode.Node, n *yaml.Node, path string, dst any) {
	if v, ok := memoryLimit(d, n, path); ok {
		*dst.(*int64) = v
	}
}

// memoryLimit decodes memory_limit: a whole number of bytes, optionally followed (no space) by
// a unit B, KiB, MiB or GiB, like GOMEMLIMIT; 0 or off turns the limit off.
func memoryLimit(d *yamlnode.Node, n *yaml.Node, path string) (int64, bool) {
	const fix = "write bytes or a whole number with a unit B, KiB, MiB or GiB, e.g. 160MiB; 0 or off turns the limit off"
	if n.Kind != yaml.ScalarNode || strings.TrimSpace(n.Value) == "" {
		d.Errorf(n, path, fix, "must be a memory size")
		return 0, false
	}
	s := n.Value
	if s == "off" {
		return 0, true
	}
	negative := strings.HasPrefix(s, "-")
	digits := strings.TrimPrefix(s, "-")
	unit := strings.TrimLeft(digits, "0123456789")
	digits = digits[:len(digits)-len(unit)]
	shift, known := memoryUnits[unit]
	_, spaced := memoryUnits[strings.TrimSpace(unit)]
	switch {
	case digits == "":
		d.Errorf(n, path, fix, "must be a memory size")
	case strings.HasPrefix(unit, ".") || strings.HasPrefix(unit, ","):
		d.Errorf(n, path, fix, "must be a whole number (use a smaller unit for a fraction, e.g. 1536MiB)")
	case !known && spaced:
		d.Errorf(n, path, fix, "write the unit right after the number, without a space")
	case !known:
		d.Errorf(n, path, fix, "unknown unit %q", unit)
	case negative:
		d.Errorf(n, path, fix, "must not be negative")
	default:
		v, err := strconv.ParseInt(digits, 10, 64)
		if err != nil || v > math.MaxInt64>>shift {
			d.Errorf(n, path, fix, "too large")
			return 0, false
		}
		if v != 0 && v<<shift < MemoryLimitMin {
			// A unit left out (160 meaning 160 bytes) would make the GC run all the time.
			d.Errorf(n, path, "write at least 16MiB (with a unit, e.g. 160MiB), or 0 or off for no limit",
				"%d %s is below the smallest limit, 16MiB", v, map[uint]string{0: "bytes", 10: "KiB", 20: "MiB", 30: "GiB"}[shift])
			return 0, false
		}
		return v << shift, true
	}
	return 0, false
}

// FormatMemoryLimit writes a memory_limit the way the config accepts it, in the largest unit
// that divides it exactly: 160MiB, 1GiB, 1000B; 0 is "off".
func FormatMemoryLimit(v int64) string {
	switch {
	case v == 0:
		return "off"
	case v%(1<<30) == 0:
		return strconv.FormatInt(v>>30, 10) + "GiB"
	case v%(1<<20) == 0:
		return strconv.FormatInt(v>>20, 10) + "MiB"
	case v%(1<<10) == 0:
		return strconv.FormatInt(v>>10, 10) + "KiB"
	}
	return strconv.FormatInt(v, 10) + "B"
}

// decodeTLS reads a `{cert_file, key_file}` mapping and checks, at config time, that both are
// set and load as a key pair. Messages never echo file contents.
func decodeTLS(d *yamlnode.Node, n *yaml.Node, path string) TLS {
	var t TLS
	d.Decode(n, path, &t, hooks)
	t.CertFile, t.KeyFile = relativeToFile(d.File, t.CertFile), relativeToFile(d.File, t.KeyFile)
	certN, keyN := lookupPath(n, "cert_file"), lookupPath(n, "key_file")
	if t.CertFile == "" && t.KeyFile == "" {
		return TLS{}
	}
	if t.CertFile == "" || t.KeyFile == "" {
		missing := "cert_file"
		if t.KeyFile == "" {
			missing = "key_file"
		}
		errAt(d, n, path, "set both cert_file and key_file (PEM files), or remove "+path+" to serve plain HTTP",
			missing+" is missing: TLS needs both cert_file and key_file")
		return TLS{}
	}
	read := func(name, file string, at *yaml.Node, what string) []byte {
		b, err := os.ReadFile(file)
		if err != nil {
			var pe *os.PathError
			if errors.As(err, &pe) {
				err = pe.Err // the path is the value already shown (or redacted)
			}
			d.Errorf(at, path+"."+name, "point "+name+" at a readable PEM file holding "+what+" (relative paths are relative to the config file)",
				"cannot read %s: %v", name, err)
			return nil
		}
		return b
	}
	certPEM := read("cert_file", t.CertFile, certN, "the certificate (and its intermediates)")
	keyPEM := read("key_file", t.KeyFile, keyN, "the certificate's private key")
	if certPEM == nil || keyPEM == nil {
		return TLS{}
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		errAt(d, n, path, "cert_file must hold the PEM certificate and key_file its PEM private key (e.g. fullchain.pem and privkey.pem of Let's Encrypt)",
			"cert_file and key_file are not a usable key pair: "+strings.TrimPrefix(err.Error(), "tls: "))
		return TLS{}
	}
	return t
}

// errAt records a problem about a whole mapping (no single value to show).
func errAt(d *yamlnode.Node, n *yaml.Node, path, fix, problem string) {
	d.Errs = append(d.Errs, connector.ConfigError{File: d.File, Line: n.Line, Path: path, Problem: problem, Fix: fix})
}

var identRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// decodeWebhooks decodes the webhooks list (each entry: webhookKeys) and checks each entry's
// URL, path (unique among them) and signing keys.
func decodeWebhooks(d *yamlnode.Node, list *yaml.Node, path string) []Webhook {
	if list.Kind != yaml.SequenceNode {
		d.Errorf(list, path, "write a list: `webhooks:` then `- url: ...` entries", "must be a list")
		return nil
	}
	var out []Webhook
	paths := map[string]string{}
	for i, n := range list.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		var k webhookKeys
		d.Decode(n, p, &k, hooks)
		w := Webhook{Name: fmt.Sprintf("webhooks[%d]", i), URL: k.URL, Path: k.Path, SigningKeys: k.SigningKeys,
			BasicUser: k.BasicAuth.Username, BasicPass: k.BasicAuth.Password}
		urlN, keysN, pathN := lookupPath(n, "url"), lookupPath(n, "signing_keys"), lookupPath(n, "path")
		for j, key := range w.SigningKeys {
			if key == "" {
				d.Errorf(keysN, fmt.Sprintf("%s.signing_keys[%d]", p, j), "set it to the webhook's secret from the Appwrite console (or remove the entry)", "empty signing key")
			}
		}
		if (w.BasicUser == "") != (w.BasicPass == "") {
			d.Errorf(lookupPath(n, "basic_auth"), p+".basic_auth", "set both username and password (Appwrite sends basic auth only when both are set), or neither", "basic_auth needs both username and password")
		}
		if w.URL == "" {
			d.Errorf(n, p+".url", "copy the URL exactly as typed into the Appwrite webhook settings", "url is required")
		} else if u, err := url.Parse(w.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			d.Errorf(urlN, p+".url", "write an absolute http(s) URL exactly as typed into Appwrite, e.g. https://sync.example.com/webhooks/appwrite", "not an absolute http(s) URL")
		} else if w.Path == "" {
			w.Path = u.EscapedPath()
			if w.Path == "" {
				w.Path = "/"
			}
		}
		route, err := webhook.RoutePath(w.Path)
		if err != nil && w.Path != "" {
			at, key := pathN, p+".path"
			if at == nil {
				at, key = urlN, p+".url" // derived from the url
			}
			d.Errorf(at, key, "write the path as it appears in the URL Appwrite calls", "%v", err)
		}
		if len(w.SigningKeys) == 0 {
			at := keysN
			if at == nil {
				at = n
			}
			d.Errorf(at, p+".signing_keys", "add the webhook's secret (Appwrite console → webhook → Signature key), e.g. signing_keys: [\"${APPWRITE_WEBHOOK_SECRET}\"]", "at least one signing key is required")
		}
		if prev, dup := paths[route]; dup && route != "" {
			d.Errorf(n, p+".path", "give each webhook its own path (set `path:`)", "path %s is already used by %s", w.Path, prev)
		}
		paths[route] = w.Name
		out = append(out, w)
	}
	return out
}
