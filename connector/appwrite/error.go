package appwrite

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Sentinel errors. An *APIError matches the one that fits its status and type under
// errors.Is, so callers branch without knowing Appwrite's type strings.
var (
	// ErrUnauthorized: the key was rejected or lacks a scope, or the project does not exist.
	// Retrying cannot help; the configuration must change.
	ErrUnauthorized = errors.New("appwrite rejected the credentials")
	// ErrTableNotFound: the database or the table (legacy: collection) does not exist.
	ErrTableNotFound = errors.New("appwrite table not found")
	// ErrRowNotFound: the row (legacy: document) does not exist.
	ErrRowNotFound = errors.New("appwrite row not found")
	// ErrCursorNotFound: the cursorAfter row was deleted between pages. Page by keyset
	// (ListQuery.AfterSequence, Scan) instead.
	ErrCursorNotFound = errors.New("appwrite cursor row not found")
	// ErrWebhookNotFound: no webhook with that id in the project.
	ErrWebhookNotFound = errors.New("appwrite webhook not found")
	// ErrNotSupported: the server has no such route (e.g. GET /webhooks/{id} before 1.9).
	ErrNotSupported = errors.New("not supported by this appwrite server")
	// ErrStopScan may be returned by a Scan callback to end the scan early without error.
	ErrStopScan = errors.New("stop scan")
)

// Appwrite error types the client reacts to.
const (
	typeRouteNotFound      = "general_route_not_found"
	typeCursorNotFound     = "general_cursor_not_found"
	typeUnauthorizedScope  = "general_unauthorized_scope"
	typeUserUnauthorized   = "user_unauthorized"
	typeProjectNotFound    = "project_not_found"
	typeProjectUnknown     = "project_unknown"
	typeKeyExpired         = "project_key_expired"
	typeDatabaseNotFound   = "database_not_found"
	typeTableNotFound      = "table_not_found"
	typeCollectionNotFound = "collection_not_found"
	typeRowNotFound        = "row_not_found"
	typeDocumentNotFound   = "document_not_found"
	typeWebhookNotFound    = "webhook_not_found"
)

// APIError is a failure Appwrite (or something in front of it) answered with an HTTP status
// >= 400. Status, Code, Type and Message come from the response ({"message","code","type",
// "version"}); Hint says what to do about it. No field ever holds the API key.
type APIError struct {
	// Op is what was attempted, e.g. "list rows main/posts".
	Op string
	// Status is the HTTP status.
	Status int
	// Code is the "code" of Appwrite's error body (usually equal to Status).
	Code int
	// Type is Appwrite's error type, e.g. "user_unauthorized"; empty when the body was not an
	// Appwrite error (a proxy page).
	Type string
	// Message is Appwrite's message, or the start of a non-JSON body.
	Message string
	// Version is the server version Appwrite reports in error bodies.
	Version string
	// Hint is the fix, in terms of the configuration; may be empty.
	Hint string
	// Attempts is how many attempts were made before giving up (>1 after retries).
	Attempts int
}

func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("appwrite: ")
	if e.Op != "" {
		b.WriteString(e.Op)
		b.WriteString(": ")
	}
	fmt.Fprintf(&b, "%d", e.Status)
	if e.Type != "" {
		b.WriteString(" ")
		b.WriteString(e.Type)
	} else if t := http.StatusText(e.Status); t != "" {
		b.WriteString(" ")
		b.WriteString(t)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " (gave up after %d attempts)", e.Attempts)
	}
	if e.Hint != "" {
		b.WriteString(": ")
		b.WriteString(e.Hint)
	}
	return b.String()
}

// Is matches the sentinel errors of this package.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrUnauthorized:
		return e.unauthorized()
	case ErrTableNotFound:
		return e.Type == typeDatabaseNotFound || e.Type == typeTableNotFound || e.Type == typeCollectionNotFound
	case ErrRowNotFound:
		return e.Type == typeRowNotFound || e.Type == typeDocumentNotFound
	case ErrCursorNotFound:
		return e.Type == typeCursorNotFound
	case ErrWebhookNotFound:
		return e.Type == typeWebhookNotFound
	}
	return false
}

func (e *APIError) unauthorized() bool {
	switch {
	case e.Status == http.StatusUnauthorized, e.Status == http.StatusForbidden:
		return true
	case e.Type == typeUnauthorizedScope, e.Type == typeUserUnauthorized,
		e.Type == typeProjectNotFound, e.Type == typeProjectUnknown, e.Type == typeKeyExpired:
		return true
	}
	return false
}

// Retryable reports whether the failure is transient (rate limit, server error, timeout):
// worth trying again later even though this request gave up.
func (e *APIError) Retryable() bool { return retryableStatus(e.Status) }

func retryableStatus(status int) bool {
	switch {
	case status == http.StatusTooManyRequests, status == http.StatusRequestTimeout:
		return true
	case status == http.StatusNotImplemented, status == http.StatusHTTPVersionNotSupported:
		return false
	case status >= 500:
		return true
	}
	return false
}

// routeMissing reports a 404 that is not about a resource Appwrite knows (a database, table,
// row, project or webhook): the route itself does not exist on this server, or something in
// front of Appwrite answered.
func routeMissing(err error) bool {
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusNotFound {
		return false
	}
	switch ae.Type {
	case typeDatabaseNotFound, typeTableNotFound, typeCollectionNotFound, typeRowNotFound,
		typeDocumentNotFound, typeProjectNotFound, typeWebhookNotFound:
		return false
	}
	return true
}

// family is the API a request went to; hints differ between them.
type family int8

const (
	familyTables family = iota
	familyLegacy
	familyWebhooks
)

// hint returns the fix for e in terms of the configuration.
func (c *Client) hint(e *APIError, r *request) string {
	switch e.Type {
	case typeUserUnauthorized:
		return "the API key was rejected: check appwrite.api_key and appwrite.project"
	case typeKeyExpired:
		return "the API key has expired: create a new one (Console → Overview → API keys) and set appwrite.api_key"
	case typeProjectNotFound, typeProjectUnknown:
		return fmt.Sprintf("project %q does not exist at %s: check appwrite.project and appwrite.endpoint", c.project, c.endpoint)
	case typeDatabaseNotFound:
		return fmt.Sprintf("database %q does not exist in project %q: check the table's database id", r.key.Database, c.project)
	case typeTableNotFound, typeCollectionNotFound:
		return fmt.Sprintf("table %s does not exist in project %q: check the table id", r.key, c.project)
	case typeCursorNotFound:
		return "the cursor row was deleted between pages: page by keyset on $sequence (Scan) instead"
	case typeWebhookNotFound:
		return fmt.Sprintf("no webhook %q in project %q: check the webhook id (Console → Settings → Webhooks)", r.webhookID, c.project)
	}
	if e.Type == typeUnauthorizedScope || e.Status == http.StatusForbidden || e.Status == http.StatusUnauthorized {
		if strings.Contains(e.Message, "(role: guests)") {
			// An unknown key makes some Appwrite versions treat the request as a guest.
			return "Appwrite treated the request as a guest, so the API key was not accepted: check appwrite.api_key and appwrite.project"
		}
		if e.Type != typeUnauthorizedScope {
			if e.Status == http.StatusUnauthorized {
				return "the API key was rejected: check appwrite.api_key and appwrite.project"
			}
			scope := map[family]string{familyTables: "rows.read", familyLegacy: "documents.read", familyWebhooks: "webhooks.read"}[r.family]
			if r.scope != "" {
				scope = r.scope
			}
			return "access was refused: check that appwrite.endpoint points at Appwrite and that the API key has scope " + scope
		}
		switch {
		case r.scope != "":
			return "the API key lacks scope " + r.scope + ": add it in Console → Overview → API keys"
		case r.family == familyWebhooks:
			return "the API key lacks scope webhooks.read: add it in Console → Overview → API keys"
		case r.family == familyLegacy:
			return "the API key lacks scope documents.read (legacy Databases API; rows.read on TablesDB): add it in Console → Overview → API keys"
		default:
			return "the API key lacks scope rows.read (TablesDB; documents.read on the legacy API): add it in Console → Overview → API keys"
		}
	}
	switch {
	case e.Status == http.StatusTooManyRequests:
		return "Appwrite is rate limiting this key: lower the backfill concurrency or page size, or try again later"
	case e.Status >= 500:
		return "Appwrite failed to answer: check the server's health and logs, then try again"
	case e.Status == http.StatusNotFound && e.Type == "":
		return fmt.Sprintf("the endpoint answered 404 without an Appwrite error: check appwrite.endpoint (%s; it normally ends in /v1)", c.endpoint)
	}
	return ""
}

// redact removes the API key from text that came from the network, should a server or proxy
// ever echo it.
func (c *Client) redact(s string) string {
	if c.key == "" || !strings.Contains(s, c.key) {
		return s
	}
	return strings.ReplaceAll(s, c.key, "[redacted]")
}
