// Package appwrite is a small REST client for the parts of the Appwrite API that backfill and
// reconciliation need: list the rows of a table page by page, read one row, and read a
// webhook's health (enabled, consecutive failed attempts).
//
// It speaks plain net/http (the official Go SDK is not available here) to the TablesDB routes
// of Appwrite 1.8+ and falls back, once per client, to the legacy Databases routes
// (collections/documents) when the server does not know TablesDB. Whole-table reads page by
// keyset on $sequence (Scan), never by cursorAfter: a cursor row deleted between two pages
// makes Appwrite answer 400 general_cursor_not_found, a keyset simply moves on.
//
// Every request is retried with exponential backoff and jitter on 429, 5xx and network
// errors, honouring Retry-After, within a bounded time and always bounded by the caller's
// context. Failures Appwrite reports come back as *APIError with a hint that says what to
// fix; errors.Is matches them against ErrUnauthorized, ErrTableNotFound, ErrRowNotFound,
// ErrCursorNotFound and friends. The API key never appears in an error or a log line.
//
// Package appwritetest holds an in-process double of the Appwrite API for tests and
// benchmarks.
package appwrite
