package webhook

import (
	"fmt"
	"net/url"
	"path"
	"strings"
)

// RoutePath returns the route of a webhook path written as in a URL ("/hooks/app%20write"):
// its %-escapes decoded ("/hooks/app write"), because the router matches the decoded request
// path and Appwrite requests the URL exactly as typed. Decoding happens here and only here, so
// a path is never decoded twice.
//
// It fails on a path the router cannot hold as a plain route, naming the fix: one that does
// not start with "/", a malformed escape, '*' (a wildcard the router cannot escape), '\'
// (its escape character), or empty, "." and ".." segments (the router cleans routes but not
// requests, so those would answer 404). ':' is fine: Routes escapes it.
func RoutePath(p string) (string, error) {
	if !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("path %q must start with /", p)
	}
	route, err := url.PathUnescape(p)
	if err != nil {
		return "", fmt.Errorf("path %q: %w; write it as in the URL (e.g. %%20 for a space, %%25 for %%)", p, err)
	}
	if strings.ContainsAny(route, `*\`) {
		return "", fmt.Errorf("path %q contains '*' or '\\', which the router cannot take literally; choose a plain path (and the same in Appwrite's webhook URL)", p)
	}
	clean := path.Clean(route)
	if strings.HasSuffix(route, "/") && clean != "/" {
		clean += "/"
	}
	if clean != route {
		return "", fmt.Errorf("path %q has empty, \".\" or \"..\" segments, which the router would not match; write it as %q (and the same in Appwrite's webhook URL)", p, (&url.URL{Path: clean}).EscapedPath())
	}
	return route, nil
}

// ginRoute escapes the characters gin reads as wildcards in a route: ':' (RoutePath refuses
// '*', which has no escape).
func ginRoute(route string) string { return strings.ReplaceAll(route, ":", `\:`) }
