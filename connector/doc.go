// Package connector holds the vocabulary shared by every part of appwrite-sync: a Change
// decoded from an Appwrite webhook or read from the REST API, its Version (the order in which
// changes to one row are applied) and ContentHash (the version's tie-break), the table key,
// and the error types that steer control flow (permanent vs retryable sink errors,
// configuration errors that point at a file and line).
//
// Sub-packages do the work: webhook (verify + decode), ledger (durable record + delivery),
// sink/meilisink and sink/pgsink (the Meilisearch and Postgres adapters), appwrite (REST
// client), backfill (scans), admin. Helpers no user of these packages needs live under
// internal/: rawjson (JSON text without decoding), canonjson (the canonical form ContentHash
// digests), suggest (did-you-mean), pgerr (SQLSTATE classes).
package connector
