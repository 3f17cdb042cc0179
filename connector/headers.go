package connector

// The headers Appwrite sends with every webhook delivery (see the shared appwrite.md). Only the
// signature authenticates anything, and it covers the URL and body alone: the other headers are
// as the sender wrote them.
const (
	HeaderSignature = "X-Appwrite-Webhook-Signature"
	// HeaderEvents lists every event name the delivery matches, wildcards expanded, comma separated.
	HeaderEvents    = "X-Appwrite-Webhook-Events"
	HeaderID        = "X-Appwrite-Webhook-Id"
	HeaderName      = "X-Appwrite-Webhook-Name"
	HeaderProjectID = "X-Appwrite-Webhook-Project-Id"
	// HeaderUserID is the user whose request produced the event; empty (or absent) for
	// API-key writes. It becomes Change.Actor.
	HeaderUserID = "X-Appwrite-Webhook-User-Id"
)
