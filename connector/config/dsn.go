package config

import (
	"net/url"
	"strings"
)

// redacted replaces a password in a connection string shown to people.
const redacted = "xxxxx"

// dsnHidden stands for the part of a connection string that could not be read: it is not
// shown, since a password could be anywhere in it.
const dsnHidden = "<unreadable, redacted>"

// hideSecret stands for a secret written in the config file, in messages about it.
func hideSecret(string) string { return "<secret, redacted>" }

// Redact returns a Postgres connection string with its passwords replaced, for logs and
// messages. It reads the forms pgx reads: a postgres:// or postgresql:// URL (the userinfo
// password, ?password= and ?sslpassword=) and keyword=value settings (password=…,
// quoted or not, escapes included). What it cannot read is not shown at all.
func Redact(dsn string) string {
	out, _ := readDSN(dsn)
	return out
}

// dsnPasswords returns the passwords a connection string holds (for Secrets).
func dsnPasswords(dsn string) []string {
	_, pw := readDSN(dsn)
	return pw
}

// secretKey reports whether a connection setting holds a secret.
func secretKey(k string) bool {
	return strings.EqualFold(k, "password") || strings.EqualFold(k, "sslpassword")
}

// readDSN returns dsn redacted and the passwords in it.
func readDSN(dsn string) (string, []string) {
	for _, scheme := range []string{"postgres://", "postgresql://"} {
		if strings.HasPrefix(dsn, scheme) {
			return readURL(dsn, scheme)
		}
	}
	return readKeywordValue(dsn)
}

func readURL(dsn, scheme string) (string, []string) {
	var pw []string
	u, err := url.Parse(dsn)
	if err != nil {
		// Several hosts (h1:5432,h2:5432) or a malformed URL: keep the scheme and user, hide
		// the rest (a password may hold any of the separators).
		rest := dsn[len(scheme):]
		user := rest
		if i := strings.IndexAny(rest, ":@/?"); i >= 0 {
			user = rest[:i]
		}
		if !strings.Contains(rest, "@") {
			user = "" // no userinfo: what came first is a host
		}
		if user != "" {
			user += "@"
		}
		return scheme + user + dsnHidden, nil
	}
	if u.User != nil {
		if p, ok := u.User.Password(); ok {
			pw = append(pw, p)
			u.User = url.UserPassword(u.User.Username(), redacted)
		}
	}
	if u.RawQuery != "" {
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil {
			u.RawQuery = dsnHidden
		} else {
			for k, vs := range q {
				if secretKey(k) {
					pw = append(pw, vs...)
					q[k] = []string{redacted}
				}
			}
			u.RawQuery = q.Encode()
		}
	}
	return u.String(), pw
}

// readKeywordValue reads `key=value` settings separated by whitespace, as libpq and pgx do:
// a value is single-quoted (with \' and \\ escapes) or runs to the next whitespace (with
// backslash escapes). From the first thing that is not such a setting on, nothing is shown.
func readKeywordValue(s string) (string, []string) {
	const space = " \t\n\r\v\f"
	var out []string
	var pw []string
	s = strings.TrimLeft(s, space)
	for s != "" {
		eq := strings.IndexByte(s, '=')
		key := ""
		if eq >= 0 {
			key = strings.TrimRight(s[:eq], space)
		}
		if key == "" || !plainKey(key) {
			out = append(out, dsnHidden)
			break
		}
		s = strings.TrimLeft(s[eq+1:], space)
		end, quoted := 0, s != "" && s[0] == '\''
		if quoted {
			end = 1
		}
		closed := !quoted
		for ; end < len(s); end++ {
			c := s[end]
			if c == '\\' {
				end++
				continue
			}
			if quoted && c == '\'' {
				end++
				closed = true
				break
			}
			if !quoted && strings.IndexByte(space, c) >= 0 {
				break
			}
		}
		end = min(end, len(s))
		raw := s[:end]
		s = strings.TrimLeft(s[end:], space)
		if !closed {
			out = append(out, key+"="+dsnHidden)
			break
		}
		if secretKey(key) {
			pw = append(pw, unescapeValue(raw, quoted))
			raw = redacted
		}
		out = append(out, key+"="+raw)
	}
	return strings.Join(out, " "), pw
}

// plainKey reports whether k looks like a connection setting's name: anything else (a URL
// with a typo in its scheme, say) may hold a password.
func plainKey(k string) bool {
	for _, c := range k {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

func unescapeValue(raw string, quoted bool) string {
	if quoted {
		raw = raw[1 : len(raw)-1]
	}
	var b strings.Builder
	for i := 0; i < len(raw); i++ {
		if raw[i] == '\\' && i+1 < len(raw) {
			i++
		}
		b.WriteByte(raw[i])
	}
	return b.String()
}
