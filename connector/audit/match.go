package audit

import (
	"errors"
	"fmt"
	"strings"
)

// Matcher selects deliveries by their X-Appwrite-Webhook-Events header (see the package
// documentation for why a plain intersection is Appwrite's own matching).
type Matcher struct {
	patterns map[string]struct{}
}

// NewMatcher returns a Matcher for patterns, each checked by ValidatePattern.
func NewMatcher(patterns []string) (*Matcher, error) {
	m := &Matcher{patterns: make(map[string]struct{}, len(patterns))}
	var errs []error
	for i, p := range patterns {
		if err := ValidatePattern(p); err != nil {
			errs = append(errs, fmt.Errorf("audit.events[%d]: %w", i, err))
			continue
		}
		m.patterns[p] = struct{}{}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return m, nil
}

// Selects reports whether an element of the comma-separated events header is one of the
// patterns.
func (m *Matcher) Selects(events string) bool {
	if m == nil || len(m.patterns) == 0 {
		return false
	}
	for rest := events; rest != ""; {
		var e string
		e, rest, _ = strings.Cut(rest, ",")
		if _, ok := m.patterns[strings.TrimSpace(e)]; ok {
			return true
		}
	}
	return false
}

// PatternError says why an audit.events string can never match what Appwrite sends, and how to
// write it.
type PatternError struct {
	Pattern string
	Problem string
	Fix     string
}

func (e *PatternError) Error() string { return fmt.Sprintf("%q: %s (%s)", e.Pattern, e.Problem, e.Fix) }

// patternFix is the common advice.
const patternFix = `write an Appwrite event string as in a webhook's events, e.g. "users.*", "buckets.*.files.*" or "databases.*.tables.*.rows.*"`

// ValidatePattern checks one audit.events string: dot-separated segments of Appwrite id
// characters ([A-Za-z0-9._-]), a "*" only as a whole segment (one id), a lower-case resource
// type first. Anything else is never in an events header, so it would silently select nothing.
func ValidatePattern(p string) error {
	bad := func(problem, fix string) error { return &PatternError{Pattern: p, Problem: problem, Fix: fix} }
	switch {
	case p == "":
		return bad("empty", patternFix)
	case strings.ContainsAny(p, ", \t\r\n"):
		return bad("contains a comma or white space", "write one event per list element: the events header is split at commas")
	case strings.HasPrefix(p, ".") || strings.HasSuffix(p, ".") || strings.Contains(p, ".."):
		return bad("has an empty segment", patternFix)
	}
	segs := strings.Split(p, ".")
	for _, r := range segs[0] {
		if r < 'a' || r > 'z' {
			return bad("does not start with a resource type (users, databases, tablesdb, buckets, functions, teams, ...)", patternFix)
		}
	}
	for _, s := range segs {
		if strings.Contains(s, "*") && s != "*" {
			return bad(`"*" is part of a segment`, `Appwrite matches whole strings: "*" stands for one whole id, as in "users.*"; "users.a*" never matches`)
		}
		for _, r := range s {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '*') {
				return bad(fmt.Sprintf("contains %q, which no Appwrite event holds", r), patternFix)
			}
		}
	}
	return nil
}
