package webhook

import "errors"

// The errors callers tell apart with errors.Is and errors.As.

// ErrMissingSignature means the request carried no X-Appwrite-Webhook-Signature header.
var ErrMissingSignature = errors.New("missing X-Appwrite-Webhook-Signature header")

// ErrInvalidSignature means the signature is malformed or matches none of the signing keys
// for any accepted form of the URL.
var ErrInvalidSignature = errors.New("invalid webhook signature")

// ErrNotRowEvent means the event is not about a row (a user, a table or column definition, a
// bucket, ...). Such deliveries are acknowledged and ignored: refusing them would count as a
// failure and get the webhook disabled by Appwrite.
var ErrNotRowEvent = errors.New("not a row event")

// ErrNoEvents means the X-Appwrite-Webhook-Events header is missing or empty. Appwrite always
// sends it, so a validly signed request without it is something we do not understand: it is
// reported as a DecodeError (and quarantined), not ignored.
var ErrNoEvents = errors.New("no X-Appwrite-Webhook-Events header")

// DecodeError means a validly signed request could not be turned into a Change. Reason is
// written for a human reading the quarantine; Err, when set, is a sentinel (ErrNoEvents) or
// the underlying parse error.
type DecodeError struct {
	Reason string
	Err    error
}

func (e *DecodeError) Error() string { return e.Reason }

func (e *DecodeError) Unwrap() error { return e.Err }

// ErrNotStored is returned by NotStored: there is no state store to record into.
var ErrNotStored = errors.New("no state store: change not stored")
