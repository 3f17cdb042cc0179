// Package webhook receives Appwrite webhooks: it verifies the signature over the raw request
// bytes, decodes the row event into a connector.Change, and hands it to a Recorder that stores
// it durably before the request is acknowledged.
//
// Appwrite never retries a failed delivery and disables a webhook after ten consecutive
// failures, so the answers are chosen with care: anything that is valid but not ours (another
// resource's event, an unmapped table) is acknowledged with 200 so the webhook stays enabled;
// a validly signed request we cannot understand is kept in quarantine (202) rather than
// refused; only what must not be stored (bad signature, oversized body), cannot be stored
// right now (state store down) or, when a rate limit is configured, comes from a client over
// it gets an error status.
//
// The package has three layers, each testable on its own: Verifier (signature), Decode (event
// and payload to Change) and Handler (the ordered ingest pipeline, with a thin gin adapter).
package webhook
